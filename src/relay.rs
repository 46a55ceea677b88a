//! The pipeline, top to bottom in one place:
//! verify → parse → render → dedupe → limit → record (durable) → acknowledge → execute in order.
//!
//! Webhooks (`ingest`) and the CrossTrade-compatible API (`cancel_and_bracket`) both go through here, so
//! they share the journal, the idempotency keys, the per-instrument lanes and the outbound limit.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::HeaderMap;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::domain::BracketRequest;
use crate::engine::{Engine, ExecJob, RetryPolicy, Waiters};
use crate::error::{RelayError, KILL_SWITCH_REASON};
use crate::executor::Executor;
use crate::instruments::Instruments;
use crate::journal::{now_ms, Admission, Journal, KnownState, ListFilter};
use crate::limits::{AuthFailureLimit, InboundLimits, OutboundLimit};
use crate::metrics::Metrics;
use crate::paper::{PaperBroker, SystemClock};
use crate::record::{AlertRecord, Attempt, Execution, KeyOrigin, Status};
use crate::secret::{self, Origin, Secret, SecretKind};
use crate::sequencer::Sequencer;
use crate::source::{header, Source};
use crate::template::{Rendered, Templates};

/// The longest `Prefer: wait=N` honoured, in seconds.
pub const MAX_PREFER_WAIT_SECS: u64 = 30;
/// Failed authentications per minute per address before answers turn into 429.
const AUTH_FAILURES_PER_MINUTE: u32 = 30;
/// Journal meta key holding the kill switch state (`on`/`off`), so it survives a restart.
const KILL_SWITCH_KEY: &str = "kill_switch";
/// Source name under which CrossTrade-API calls are journaled.
pub const API_SOURCE: &str = "api";

/// What the HTTP layer needs to turn an outcome into a response, without the domain knowing warp.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

/// A webhook as received.
pub struct Inbound {
    pub source: String,
    pub peer: IpAddr,
    pub headers: HeaderMap,
    pub query_token: Option<String>,
    pub body: bytes::Bytes,
    pub received: Instant,
}

/// Everything start-up says about itself: the bound address is printed by the caller.
pub struct StartupNotes {
    pub lines: Vec<String>,
}

pub struct Relay {
    pub journal: Arc<Journal>,
    pub templates: Arc<Templates>,
    pub instruments: Arc<Instruments>,
    pub paper: Arc<PaperBroker>,
    pub metrics: Arc<Metrics>,
    sources: HashMap<String, Source>,
    engine: Arc<Engine>,
    sequencer: Arc<Sequencer<ExecJob, Engine>>,
    inbound: InboundLimits,
    auth_failures: AuthFailureLimit,
    api_tokens: Vec<Secret>,
    accepting: AtomicBool,
    kill_switch: Arc<AtomicBool>,
    unknown: Arc<AtomicUsize>,
    pub body_limit: usize,
    pub shutdown_grace: Duration,
    prune_interval: Duration,
    retention: Duration,
    max_records: usize,
    max_age: Duration,
    /// Turns for `GET /api/alerts` listings ([`LISTINGS_AT_ONCE`]).
    listings: Arc<tokio::sync::Semaphore>,
    /// Injected clock for signature timestamps (tests use the vectors' old timestamps).
    now_unix: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl Relay {
    /// Builds the relay from a validated config: opens the journal and the paper account, resolves secrets,
    /// compiles templates. Returns notes to print (generated secrets and where they are).
    pub fn build(cfg: &Config) -> anyhow::Result<(Arc<Relay>, StartupNotes)> {
        let mut notes = Vec::new();
        let data_dir = cfg.data_dir();
        let instruments = Arc::new(cfg.instruments().map_err(anyhow::Error::msg)?);
        let templates = Arc::new(load_templates(cfg, &instruments)?);
        check_source_templates(cfg, &templates)?;

        let mut sources = HashMap::new();
        for (name, sc) in &cfg.sources {
            let (src, origin) =
                Source::from_config(name, sc, &data_dir).map_err(anyhow::Error::msg)?;
            note_origin(&mut notes, &format!("secret of source '{name}'"), &origin);
            sources.insert(name.clone(), src);
        }
        let api_tokens = resolve_api_tokens(cfg, &data_dir, &mut notes)?;

        let journal = Arc::new(Journal::open_configured(&data_dir, &cfg.journal)?);
        let paper = PaperBroker::open_beside_journal(
            &journal,
            cfg.paper.clone(),
            instruments.clone(),
            Arc::new(SystemClock),
        )
        .map_err(|e| anyhow::anyhow!("cannot open the paper account: {e}"))?;

        let mut executors: HashMap<String, Arc<dyn Executor>> = HashMap::new();
        for account in &cfg.paper.accounts {
            executors.insert(account.clone(), paper.clone());
        }
        if let Some(ct) = &cfg.crosstrade {
            let unused = data_dir.join("secrets").join("crosstrade.token");
            let (token, _) =
                secret::resolve(&ct.token, "crosstrade.token", &unused, SecretKind::Token)
                    .map_err(anyhow::Error::msg)?;
            let live = crate::crosstrade::build(ct, token).map_err(anyhow::Error::msg)?;
            for account in &ct.accounts {
                executors.insert(account.clone(), live.clone());
            }
            notes.push(format!(
                "LIVE accounts through CrossTrade ({}): {}",
                live.name(),
                ct.accounts.join(", ")
            ));
        }
        let metrics = Arc::new(Metrics::default());
        let o = &cfg.limits.outbound;
        // Counted by `recover`, which scans the journal once at start-up.
        let unknown = Arc::new(AtomicUsize::new(0));
        let persisted_kill = journal.meta_get(KILL_SWITCH_KEY)?.as_deref() == Some("on");
        let kill_switch = Arc::new(AtomicBool::new(cfg.execution.kill_switch || persisted_kill));
        let x = &cfg.execution;
        let engine = Arc::new(Engine {
            journal: journal.clone(),
            policy: RetryPolicy {
                max_age: Duration::from_secs(x.max_age_secs),
                backoff: Duration::from_millis(x.retry_backoff_ms.max(1)),
                backoff_max: Duration::from_millis(
                    x.retry_backoff_max_ms.max(x.retry_backoff_ms).max(1),
                ),
            },
            kill_switch: kill_switch.clone(),
            unknown: unknown.clone(),
            executors,
            outbound: OutboundLimit::new(
                o.per_second,
                o.burst,
                Duration::from_millis(o.max_wait_ms),
            ),
            waiters: Waiters::default(),
            metrics: metrics.clone(),
        });
        let inbound = InboundLimits::new(
            sources
                .values()
                .map(|s| (s.name.as_str(), s.per_second, s.burst)),
        );
        let relay = Arc::new(Relay {
            journal,
            templates,
            instruments,
            paper,
            metrics,
            sources,
            sequencer: Sequencer::new(engine.clone()),
            engine,
            inbound,
            auth_failures: AuthFailureLimit::new(AUTH_FAILURES_PER_MINUTE),
            api_tokens,
            accepting: AtomicBool::new(true),
            body_limit: cfg.server.body_limit_bytes,
            shutdown_grace: Duration::from_millis(cfg.server.shutdown_grace_ms),
            prune_interval: Duration::from_secs(cfg.journal.prune_interval_secs.max(1)),
            retention: Duration::from_secs(cfg.journal.retention_days * 86_400),
            max_records: cfg.journal.max_records,
            max_age: Duration::from_secs(cfg.execution.max_age_secs),
            listings: Arc::new(tokio::sync::Semaphore::new(LISTINGS_AT_ONCE)),
            kill_switch,
            unknown,
            now_unix: Box::new(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0)
            }),
        });
        Ok((relay, StartupNotes { lines: notes }))
    }

    /// Replaces the clock used for signature timestamps (tests with fixed vectors).
    pub fn with_clock(
        self: Arc<Self>,
        now_unix: impl Fn() -> i64 + Send + Sync + 'static,
    ) -> Arc<Self> {
        let mut me = Arc::try_unwrap(self)
            .unwrap_or_else(|_| panic!("with_clock must be called before the relay is shared"));
        me.now_unix = Box::new(now_unix);
        Arc::new(me)
    }

    pub fn source_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.sources.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn has_executor(&self, account: &str) -> bool {
        self.engine.executors.contains_key(account)
    }

    pub fn kill_switch_on(&self) -> bool {
        self.kill_switch.load(Ordering::SeqCst)
    }

    /// Turns the kill switch on or off, durably (it survives a restart).
    pub async fn set_kill_switch(&self, enabled: bool) -> Result<(), RelayError> {
        self.journal
            .meta_set(KILL_SWITCH_KEY, if enabled { "on" } else { "off" })?;
        self.journal.sync().await?;
        self.kill_switch.store(enabled, Ordering::SeqCst);
        tracing::warn!(enabled, "kill switch changed");
        Ok(())
    }

    /// Is `presented` one of the API bearer tokens?
    pub fn api_token_ok(&self, presented: &str) -> bool {
        let mut ok = false;
        for t in &self.api_tokens {
            ok |= crate::verify::token_matches(t.expose().as_bytes(), presented.as_bytes());
        }
        ok
    }

    // ---------------------------------------------------------------- webhooks

    /// Handles `POST /hooks/{source}` end to end.
    pub async fn ingest(self: &Arc<Self>, inb: Inbound) -> Result<Reply, RelayError> {
        self.detached(|me| async move {
            let result = me.ingest_inner(inb).await;
            if let Err(e) = &result {
                me.metrics.rejected(e.reason());
            }
            result
        })
        .await
    }

    async fn ingest_inner(self: &Arc<Self>, inb: Inbound) -> Result<Reply, RelayError> {
        let source = self.sources.get(&inb.source).ok_or_else(|| {
            RelayError::NotFound(format!(
                "unknown source '{}'; configured sources: {}",
                inb.source.chars().take(64).collect::<String>(),
                self.source_names().join(", ")
            ))
        })?;
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(RelayError::Unavailable(
                "the relay is shutting down; retry shortly".into(),
            ));
        }
        let ip = source.check_address(inb.peer, header(&inb.headers, "x-forwarded-for"))?;
        if inb.body.len() > self.body_limit {
            return Err(RelayError::PayloadTooLarge(format!(
                "body is {} bytes; the limit is {} (server.body_limit_bytes)",
                inb.body.len(),
                self.body_limit
            )));
        }
        let auth = source.authenticate(
            &inb.headers,
            inb.query_token.as_deref(),
            &inb.body,
            (self.now_unix)(),
        );
        let auth = match auth {
            Ok(a) => a,
            Err(e @ RelayError::Unauthorized(_)) => {
                if let Some(wait) = self.auth_failures.failed(ip) {
                    return Err(RelayError::RateLimited {
                        message: format!("too many failed authentications from {ip}; {e}"),
                        retry_after_secs: wait.as_secs().max(1),
                    });
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        // Authenticated from here on: everything gets a record.
        let (stored_body, format, parse_error) = match &auth.body {
            Ok(b) => (
                b.to_stored(),
                serde_json::to_value(b.format)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string)),
                None,
            ),
            Err(u) => (
                json!({ "unparsable": u.preview }),
                None,
                Some(u.error.clone()),
            ),
        };
        let mut rec =
            AlertRecord::received(self.journal.next_id(), &source.name, stored_body, format);
        rec.client_ip = Some(ip.to_string());
        let body_sha = rec.body_sha256.clone();
        let mut body = match auth.body {
            Ok(b) => b,
            Err(_) => {
                let e =
                    parse_error.unwrap_or_else(|| RelayError::BadRequest("unparsable body".into()));
                return Err(self.reject(rec, e).await);
            }
        };

        let template = match source.pick_template(&body) {
            Ok(t) => t,
            Err(e) => return Err(self.reject(rec, e).await),
        };
        rec.template = Some(template.clone());
        let rendered = self
            .templates
            .render(&template, &std::mem::take(&mut body.fields), &source.name)
            .map_err(|e| RelayError::Unprocessable(e.to_string()));
        let rendered = match rendered {
            Ok(r) => r,
            Err(e) => return Err(self.reject(rec, e).await),
        };
        let (template_key, requests, skip_reason) = match rendered {
            Rendered::Skipped { reason, key } => (key, Vec::new(), Some(reason)),
            Rendered::Requests { key, requests } => (key, requests, None),
        };
        if let Some(bad) = requests.iter().find(|r| !self.has_executor(&r.account)) {
            let e = RelayError::Unprocessable(format!(
                "template '{template}' produced account '{}', which is not configured; configured accounts: {}",
                bad.account,
                self.account_names().join(", ")
            ));
            return Err(self.reject(rec, e).await);
        }

        let (key, origin) = if let Some(id) = auth.webhook_id.filter(|s| !s.is_empty()) {
            (id, KeyOrigin::WebhookId)
        } else if let Some(h) = header(&inb.headers, "idempotency-key").filter(|s| !s.is_empty()) {
            (h.to_string(), KeyOrigin::Header)
        } else if let Some(k) = template_key.filter(|s| !s.is_empty()) {
            (k, KeyOrigin::Template)
        } else {
            (body_sha.clone(), KeyOrigin::BodySha256)
        };
        if key.len() > 512 {
            let e = RelayError::Unprocessable(format!(
                "idempotency key is {} bytes; at most 512 are accepted",
                key.len()
            ));
            return Err(self.reject(rec, e).await);
        }
        rec.idempotency_key = Some(key.clone());
        rec.key_origin = Some(origin);

        // A repeat costs no rate-limit budget.
        if let Some(found) = self.journal.find_key(&source.name, &key, &body_sha)? {
            return self.answer_existing(found, &key).await;
        }
        if self.kill_switch_on() {
            rec.executions = requests.into_iter().map(Execution::new).collect();
            return Err(self.reject(rec, RelayError::KillSwitch).await);
        }
        if let Err(limited) = self.inbound.check(&source.name) {
            // A duplicate that raced past the first look-up while its original was being claimed is still
            // a duplicate, not a rate-limit victim.
            if let Some(found) = self.journal.find_key(&source.name, &key, &body_sha)? {
                return self.answer_existing(found, &key).await;
            }
            let e = RelayError::RateLimited {
                message: format!(
                    "rate limited: source '{}' accepts {}/s (burst {}); retry after {}s",
                    source.name,
                    limited.per_second,
                    limited.burst,
                    limited.retry_after_secs()
                ),
                retry_after_secs: limited.retry_after_secs(),
            };
            rec.idempotency_key = None;
            return Err(self.reject(rec, e).await);
        }

        match skip_reason {
            Some(reason) => {
                rec.status = Status::Skipped;
                rec.reason = Some(reason);
            }
            None => {
                rec.executions = requests.into_iter().map(Execution::new).collect();
            }
        }
        let rec = match self.journal.admit(rec).await? {
            Admission::New(rec) => rec,
            other => return self.answer_existing(other, &key).await,
        };
        if let Err(e) = self.journal.sync().await {
            return Err(self.not_acknowledged(&rec, true, inb.received, e.into()));
        }
        let ack = inb.received.elapsed();
        self.metrics.acknowledged(ack);

        self.metrics.alert_status(&rec.source, rec.status.as_str());
        tracing::info!(alert_id = %rec.id, source = %rec.source, status = rec.status.as_str(), "alert recorded");

        if rec.status == Status::Skipped {
            return Ok(Reply {
                status: 200,
                body: json!({"alertId": rec.id, "status": "skipped", "reason": rec.reason}),
                headers: vec![],
            });
        }
        let wait = prefer_wait(&inb.headers);
        let waiter = wait.map(|_| self.engine.waiters.register(&rec.id));
        self.submit(&rec, true, inb.received, Some(ack), None);
        if let (Some(wait), Some(rx)) = (wait, waiter) {
            if let Ok(Ok(done)) = tokio::time::timeout(wait, rx).await {
                return Ok(Reply {
                    status: 200,
                    body: record_reply(&done),
                    headers: vec![],
                });
            }
        }
        Ok(Reply {
            status: 202,
            body: json!({"alertId": rec.id, "status": "accepted"}),
            headers: vec![],
        })
    }

    fn account_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.engine.executors.keys().cloned().collect();
        v.sort();
        v
    }

    /// Records an authenticated alert that will not execute, and returns the error to answer. Refused by the
    /// kill switch, its executions are rejected too, each with the same reason.
    async fn reject(&self, mut rec: AlertRecord, e: RelayError) -> RelayError {
        rec.status = Status::Rejected;
        rec.reason = Some(match e {
            RelayError::KillSwitch => {
                for ex in &mut rec.executions {
                    ex.status = Status::Rejected;
                    ex.error = Some(KILL_SWITCH_REASON.into());
                }
                KILL_SWITCH_REASON.to_string()
            }
            _ => e.to_string(),
        });
        // Rejections claim no idempotency key: a corrected retry must go through.
        rec.idempotency_key = None;
        // Durable before the answer, like every other record.
        if let Err(je) = self.journal.insert(&rec) {
            tracing::error!(error = %je, "cannot record a rejected alert");
        } else if let Err(je) = self.journal.sync().await {
            tracing::error!(error = %je, "cannot make a rejected alert durable");
        } else {
            self.metrics.alert_status(&rec.source, "rejected");
            tracing::info!(alert_id = %rec.id, source = %rec.source, reason = %e, "alert rejected");
        }
        e
    }

    async fn answer_existing(&self, found: Admission, key: &str) -> Result<Reply, RelayError> {
        match found {
            Admission::Duplicate(rec) | Admission::New(rec) => {
                // The original may have been acknowledged an instant ago: make sure it is durable too.
                self.journal.sync().await?;
                Ok(Reply {
                    status: 200,
                    body: record_reply(&rec),
                    headers: vec![("Idempotent-Replayed", "true".into())],
                })
            }
            Admission::Conflict { existing_id } => Err(RelayError::Unprocessable(format!(
                "idempotency key '{}' was already used by alert {existing_id} with a different body; send a new key for a new alert",
                key.chars().take(128).collect::<String>()
            ))),
        }
    }

    pub(crate) fn register_waiter(&self, id: &str) -> tokio::sync::oneshot::Receiver<AlertRecord> {
        self.engine.waiters.register(id)
    }

    /// Queues a replayed record: every request runs (a replay is not superseded by the next replay).
    pub(crate) fn submit_replay(&self, rec: &AlertRecord, received: Instant) {
        self.submit(rec, false, received, None, None);
    }

    /// Queues every execution of a durable record in its lane.
    fn submit(
        &self,
        rec: &AlertRecord,
        supersedable: bool,
        received: Instant,
        ack: Option<Duration>,
        mut reply: Option<tokio::sync::oneshot::Sender<Execution>>,
    ) {
        let stored = rec.state();
        for (index, e) in rec.executions.iter().enumerate() {
            if e.status != Status::Accepted {
                continue;
            }
            self.sequencer.submit(ExecJob {
                alert_id: rec.id.clone(),
                source: rec.source.clone(),
                received_at_ms: rec.received_at_ms,
                index,
                request: e.request.clone(),
                supersedable,
                reply: reply.take(),
                received,
                ack_us: ack.map(|d| d.as_micros() as u64),
                known: std::sync::Mutex::new(Some(KnownState::admitted(stored.clone()))),
            });
        }
    }

    // ---------------------------------------------------------------- CrossTrade-compatible API

    /// `CancelAndBracket` over HTTP or WebSocket: journaled, ordered and limited like a webhook, but answered
    /// synchronously with the broker's outcome.
    pub async fn cancel_and_bracket(
        self: &Arc<Self>,
        path_account: Option<&str>,
        args: &Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Reply, RelayError> {
        let received = Instant::now();
        let req = BracketRequest::from_args(args, path_account, &self.instruments)
            .map_err(|e| RelayError::BadRequest(e.to_string()))?;
        if !self.has_executor(&req.account) {
            return Err(RelayError::BadRequest(format!(
                "account: unknown account '{}'; configured accounts: {}",
                req.account,
                self.account_names().join(", ")
            )));
        }
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(RelayError::Unavailable(
                "the relay is shutting down; retry shortly".into(),
            ));
        }
        let kill = self.kill_switch_on();
        let mut rec = AlertRecord::received(
            self.journal.next_id(),
            API_SOURCE,
            Value::Object(args.clone()),
            Some("json".into()),
        );
        rec.idempotency_key = idempotency_key
            .filter(|k| !k.is_empty())
            .map(|k| format!("{}/{k}", req.account));
        rec.key_origin = idempotency_key.map(|_| KeyOrigin::Header);
        rec.executions = vec![Execution::new(req)];
        if kill {
            return Err(self.reject(rec, RelayError::KillSwitch).await);
        }
        // No inbound limit on this path, so `admit` alone answers repeats (no separate look-up first).
        let key = rec.idempotency_key.clone().unwrap_or_default();
        self.detached(|me| async move {
            let rec = match me.journal.admit(rec).await? {
                Admission::New(rec) => rec,
                other => return me.api_existing(other, &key).await,
            };
            if let Err(e) = me.journal.sync().await {
                return Err(me.not_acknowledged(&rec, false, received, e.into()));
            }
            me.metrics.acknowledged(received.elapsed());
            let (tx, rx) = tokio::sync::oneshot::channel();
            me.submit(&rec, false, received, Some(received.elapsed()), Some(tx));
            let exec = rx
                .await
                .map_err(|_| RelayError::Internal("execution was dropped".into()))?;
            execution_reply(&exec, vec![])
        })
        .await
    }

    /// Runs `work` in a task of its own and waits for it. A caller that goes away (a webhook sender's
    /// timeout, a closed socket) drops the waiting future, not the work: an alert recorded in the journal
    /// always reaches its lane, never stays `accepted` until the next restart.
    pub(crate) async fn detached<T, F, Fut>(self: &Arc<Self>, work: F) -> Result<T, RelayError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Self>) -> Fut,
        Fut: std::future::Future<Output = Result<T, RelayError>> + Send + 'static,
    {
        tokio::spawn(work(self.clone()))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "alert handling stopped unexpectedly");
                Err(RelayError::Internal(
                    "alert handling stopped unexpectedly; it may have been recorded: look it up in /api/alerts before sending it again".into(),
                ))
            })
    }

    /// An admitted record whose flush failed: it is in the journal, so it runs like any other (start-up
    /// recovery would run it too); the sender hears the failure and, retrying with the same key, gets this
    /// record back instead of a second execution.
    pub(crate) fn not_acknowledged(
        &self,
        rec: &AlertRecord,
        supersedable: bool,
        received: Instant,
        e: RelayError,
    ) -> RelayError {
        tracing::error!(alert_id = %rec.id, error = %e, "alert recorded but not flushed; executing it anyway");
        if rec.status != Status::Skipped {
            self.submit(rec, supersedable, received, None, None);
        }
        e
    }

    async fn api_existing(&self, found: Admission, key: &str) -> Result<Reply, RelayError> {
        match found {
            Admission::Duplicate(rec) | Admission::New(rec) => {
                let rec = if rec.is_final() {
                    rec
                } else {
                    // Still running: wait for it rather than answer half a story.
                    let rx = self.engine.waiters.register(&rec.id);
                    match self.journal.get(&rec.id)? {
                        Some(now) if now.is_final() => now,
                        _ => rx.await.map_err(|_| {
                            RelayError::Internal("original execution was dropped".into())
                        })?,
                    }
                };
                // The final state may be an instant old and not yet flushed (nobody was waiting for it
                // when it was written): on disk before anyone is told.
                self.journal.sync().await?;
                let exec = rec
                    .executions
                    .first()
                    .cloned()
                    .ok_or_else(|| RelayError::Internal("record without execution".into()))?;
                execution_reply(&exec, vec![("Idempotent-Replayed", "true".into())])
            }
            Admission::Conflict { existing_id } => Err(RelayError::Unprocessable(format!(
                "Idempotency-Key '{key}' was already used by call {existing_id} with a different body; send a new key"
            ))),
        }
    }

    // ---------------------------------------------------------------- read API

    pub fn get_alert(&self, id: &str) -> Result<AlertRecord, RelayError> {
        self.journal.get(id)?.ok_or_else(|| {
            RelayError::NotFound(format!(
                "no alert with id '{}'",
                id.chars().take(64).collect::<String>()
            ))
        })
    }

    /// `GET /api/alerts`: the records matching the query, newest first. A filtered listing may decode every
    /// record of the journal, so it runs on the blocking pool (the async workers, one on two cores, keep
    /// taking alerts) and at most [`LISTINGS_AT_ONCE`] run at once (they do not take every core either).
    pub async fn list_alerts(
        &self,
        q: &BTreeMap<String, String>,
    ) -> Result<Vec<AlertRecord>, RelayError> {
        let filter = list_filter(q)?;
        let turn = self
            .listings
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RelayError::Internal("listings are closed".into()))?;
        let journal = self.journal.clone();
        // The turn goes with the walk, which goes on to its end if the client hangs up meanwhile.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            journal.list(&filter)
        })
        .await
        .map_err(|e| RelayError::Internal(format!("listing failed: {e}")))?
        .map_err(RelayError::from)
    }

    /// `/healthz`: ok, or degraded with the reasons (unknown outcomes, kill switch, an executor that is not
    /// usable: a refused token, CrossTrade unreachable).
    pub async fn health(&self) -> Value {
        let mut problems = Vec::new();
        let unknown = self.unknown.load(Ordering::SeqCst);
        if unknown > 0 {
            problems.push(format!(
                "{unknown} execution(s) with unknown outcome: check the account and see GET /api/alerts?status=unknown"
            ));
        }
        if self.kill_switch_on() {
            problems.push("kill switch is on: nothing executes".into());
        }
        problems.extend(self.executor_problems().await);
        json!({
            "status": if problems.is_empty() { "ok" } else { "degraded" },
            "problems": problems,
            "records": self.journal.record_count(),
            "killSwitch": self.kill_switch_on(),
        })
    }

    /// What each distinct executor says about itself.
    async fn executor_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen: Vec<usize> = Vec::new();
        let mut accounts: Vec<(&String, &Arc<dyn Executor>)> =
            self.engine.executors.iter().collect();
        accounts.sort_by(|a, b| a.0.cmp(b.0));
        for (account, ex) in accounts {
            // One executor may serve many accounts: ask it once.
            let ptr = Arc::as_ptr(ex) as *const () as usize;
            if seen.contains(&ptr) {
                continue;
            }
            seen.push(ptr);
            if let Err(e) = ex.ready().await {
                problems.push(format!("{} (account {account}): {e}", ex.name()));
            }
        }
        problems
    }

    /// `/readyz`: the journal answers and every executor is usable. `Err` lists what is not.
    pub async fn readiness(&self) -> Result<Value, Value> {
        let mut problems = Vec::new();
        if let Err(e) = self.journal.meta_get(KILL_SWITCH_KEY) {
            problems.push(format!("journal: {e}"));
        }
        if !self.accepting.load(Ordering::SeqCst) {
            problems.push("shutting down".to_string());
        }
        problems.extend(self.executor_problems().await);
        if problems.is_empty() {
            Ok(json!({"status": "ready"}))
        } else {
            Err(json!({"status": "not ready", "problems": problems}))
        }
    }

    pub fn metrics_text(&self) -> String {
        let mut extra = String::new();
        extra.push_str("# HELP alert_relay_queue_depth Executions waiting per lane.\n# TYPE alert_relay_queue_depth gauge\n");
        for ((account, instrument), n) in self.sequencer.depths() {
            extra.push_str(&format!(
                "alert_relay_queue_depth{{account=\"{account}\",instrument=\"{instrument}\"}} {n}\n"
            ));
        }
        extra.push_str(&format!(
            "# HELP alert_relay_journal_records Records in the journal.\n# TYPE alert_relay_journal_records gauge\nalert_relay_journal_records {}\n",
            self.journal.record_count()
        ));
        extra.push_str(&format!(
            "# HELP alert_relay_journal_bytes Journal size on disk.\n# TYPE alert_relay_journal_bytes gauge\nalert_relay_journal_bytes {}\n",
            self.journal.size_on_disk()
        ));
        self.metrics.render(&extra)
    }

    // ---------------------------------------------------------------- lifecycle

    /// Start-up recovery, in one pass over the journal:
    /// - `executing` executions (sent, no answer) become `unknown` and are never re-sent by themselves;
    /// - `accepted` executions older than the age limit become `expired`;
    /// - `accepted` executions whose lane already saw a newer alert start are `superseded` by it (running
    ///   them now would put an old bracket back over a newer one);
    /// - the rest run now, queued in id order so every lane keeps arrival order.
    pub fn recover(&self) -> Result<Vec<String>, RelayError> {
        let mut notes = Vec::new();
        let mut open = Vec::new();
        let mut newest_started: HashMap<(String, String), String> = HashMap::new();
        let mut unknown = 0;
        self.journal.for_each(|rec| {
            for e in &rec.executions {
                if e.status == Status::Unknown {
                    unknown += 1;
                }
                if matches!(
                    e.status,
                    Status::Executing | Status::Executed | Status::Unknown | Status::Failed
                ) {
                    // Oldest first: a later record overwrites an earlier one.
                    newest_started.insert(e.request.lane(), rec.id.clone());
                }
            }
            if matches!(rec.status, Status::Accepted | Status::Executing) {
                open.push(rec);
            }
        })?;
        self.unknown.store(unknown, Ordering::SeqCst);
        let max_age = self.max_age;
        for rec in open {
            let age = Duration::from_millis(now_ms().saturating_sub(rec.received_at_ms));
            let updated = self.journal.update(&rec.id, |r| {
                for e in &mut r.executions {
                    let newer = newest_started
                        .get(&e.request.lane())
                        .filter(|n| n.as_str() > rec.id.as_str());
                    match e.status {
                        Status::Executing => {
                            e.status = Status::Unknown;
                            e.error = Some("the relay stopped while this was sent to the broker; check the account and resolve by hand".into());
                            // The attempt in flight got no answer: it is kept like every other one.
                            e.attempts.push(Attempt {
                                at_ms: now_ms(),
                                transport: e.executor.clone().unwrap_or_default(),
                                status: "unknown".into(),
                                error: Some("in flight when the relay stopped; no answer was received".into()),
                                duration_ms: 0,
                            });
                        }
                        Status::Accepted if age > max_age => {
                            e.status = Status::Expired;
                            e.error = Some(format!(
                                "not executed before a restart and older than {}s",
                                max_age.as_secs()
                            ));
                        }
                        Status::Accepted if newer.is_some() => {
                            e.status = Status::Superseded;
                            e.superseded_by = newer.cloned();
                        }
                        _ => {}
                    }
                }
            })?;
            let Some(state) = updated else { continue };
            let newly_unknown = rec
                .executions
                .iter()
                .filter(|e| e.status == Status::Executing)
                .count();
            // The record as walked above, with the state just written: no second read.
            let mut r = rec;
            r.set_state(state);
            self.unknown.fetch_add(newly_unknown, Ordering::SeqCst);
            match r.status {
                Status::Unknown => {
                    tracing::warn!(alert_id = %r.id, "outcome unknown after restart");
                    notes.push(format!(
                        "alert {} is unknown (was executing at shutdown)",
                        r.id
                    ));
                }
                Status::Expired => notes.push(format!("alert {} expired", r.id)),
                _ => {}
            }
            self.submit(&r, r.source != API_SOURCE, Instant::now(), None, None);
        }
        Ok(notes)
    }

    /// Background upkeep: prune expired idempotency keys and limiter memory.
    pub fn spawn_maintenance(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let every = self.prune_interval;
        tokio::spawn(async move {
            // Four times a second the record count is checked against `max_records` (an atomic read), so a
            // burst is pruned back at once instead of at the next full pass: under saturation a 1-s check
            // let the journal overshoot by 9-13 % and RSS pass 100 MB (BENCHMARKS.md, sixth round).
            let mut tick = tokio::time::interval(every.min(Duration::from_millis(250)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut last_full = Instant::now();
            loop {
                tick.tick().await;
                let Some(relay) = me.upgrade() else { break };
                let full = last_full.elapsed() >= every;
                if !full && relay.journal.record_count() <= relay.max_records {
                    continue;
                }
                if full {
                    last_full = Instant::now();
                }
                // sled calls block: off the async workers.
                let r = relay.clone();
                let _ = tokio::task::spawn_blocking(move || r.maintain(full)).await;
            }
        });
    }

    /// One maintenance pass: records beyond retention (with their keys); with `full`, also expired keys and
    /// the auth-failure table.
    fn maintain(&self, full: bool) {
        if full {
            match self.journal.prune_keys() {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "expired idempotency keys pruned"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "pruning idempotency keys failed"),
            }
            self.auth_failures.retain_recent();
        }
        match self.journal.prune_records(self.retention, self.max_records) {
            Ok(n) if n > 0 => tracing::info!(pruned = n, "old records pruned"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning records failed"),
        }
    }

    /// Stop accepting, let in-flight executions finish within the grace period, flush.
    pub async fn shutdown(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        if tokio::time::timeout(self.shutdown_grace, self.sequencer.idle())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over with executions still running");
        }
        if let Err(e) = self.journal.flush_now() {
            tracing::error!(error = %e, "final journal flush failed");
        }
    }
}

/// Listings (`GET /api/alerts`) walking the journal at once.
const LISTINGS_AT_ONCE: usize = 2;

/// The JSON answer for a record: the record with `alertId` beside `id`.
pub fn record_reply(rec: &AlertRecord) -> Value {
    let mut v = serde_json::to_value(rec).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("alertId".into(), Value::String(rec.id.clone()));
    }
    v
}

/// The CrossTrade answer for a finished execution.
fn execution_reply(
    exec: &Execution,
    headers: Vec<(&'static str, String)>,
) -> Result<Reply, RelayError> {
    let err = || {
        exec.error
            .clone()
            .unwrap_or_else(|| format!("execution {}", exec.status.as_str()))
    };
    match exec.status {
        Status::Executed => Ok(Reply {
            status: 200,
            body: serde_json::to_value(exec.outcome.as_ref()).unwrap_or(Value::Null),
            headers,
        }),
        Status::Failed => Err(RelayError::BadRequest(err())),
        Status::Rejected => Err(RelayError::RateLimited {
            message: err(),
            retry_after_secs: 1,
        }),
        Status::Unknown => Err(RelayError::BadGateway(err())),
        _ => Err(RelayError::Unavailable(err())),
    }
}

/// `Prefer: wait=N` (RFC 7240), capped.
fn prefer_wait(headers: &HeaderMap) -> Option<Duration> {
    for v in headers.get_all("prefer") {
        let Ok(v) = v.to_str() else { continue };
        for pref in v.split([',', ';']) {
            if let Some(n) = pref.trim().strip_prefix("wait=") {
                if let Ok(n) = n.trim().parse::<f64>() {
                    if n.is_finite() && n > 0.0 {
                        return Some(Duration::from_secs_f64(n.min(MAX_PREFER_WAIT_SECS as f64)));
                    }
                }
            }
        }
    }
    None
}

/// A time filter: RFC 3339, unix milliseconds, or an age (`7d`).
fn parse_time(v: &str, field: &str) -> Result<u64, RelayError> {
    crate::journal::parse_time(v).map_err(|e| RelayError::BadRequest(format!("{field}: {e}")))
}

/// The journal filter of a `GET /api/alerts` query; unknown or malformed parameters are a 400 naming them.
fn list_filter(q: &BTreeMap<String, String>) -> Result<ListFilter, RelayError> {
    let mut f = ListFilter::default();
    for (k, v) in q {
        match k.as_str() {
            "status" => {
                f.status = Some(
                    crate::journal::parse_status(v)
                        .map_err(|e| RelayError::BadRequest(format!("status: {e}")))?,
                )
            }
            "source" => f.source = Some(v.clone()),
            "since" => f.since_ms = Some(parse_time(v, "since")?),
            "until" => f.until_ms = Some(parse_time(v, "until")?),
            "limit" => {
                f.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        RelayError::BadRequest(format!(
                            "limit: '{v}' must be a whole number from 1 to 1000"
                        ))
                    })?
            }
            other => {
                return Err(RelayError::BadRequest(format!(
                    "unknown query parameter '{other}'; use status, source, since, until, limit"
                )))
            }
        }
    }
    Ok(f)
}

pub fn load_templates(cfg: &Config, instruments: &Arc<Instruments>) -> anyhow::Result<Templates> {
    let dir = cfg.templates_dir();
    let dir = dir.is_dir().then_some(dir);
    Templates::load(dir.as_deref(), instruments.clone()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `alert-relay check`: everything `serve` would verify before opening the journal, without writing
/// anything (`auto` secrets are not generated).
pub fn check(cfg: &Config) -> anyhow::Result<String> {
    let instruments = Arc::new(cfg.instruments().map_err(anyhow::Error::msg)?);
    let templates = load_templates(cfg, &instruments)?;
    check_source_templates(cfg, &templates)?;
    let scratch = std::env::temp_dir().join(format!("alert-relay-check-{}", std::process::id()));
    for (name, sc) in &cfg.sources {
        if sc.secret.trim() == "auto" {
            continue;
        }
        Source::from_config(name, sc, &scratch).map_err(anyhow::Error::msg)?;
    }
    if let Some(ct) = &cfg.crosstrade {
        let (token, _) =
            secret::resolve(&ct.token, "crosstrade.token", &scratch, SecretKind::Token)
                .map_err(anyhow::Error::msg)?;
        crate::crosstrade::validate(ct, &token).map_err(anyhow::Error::msg)?;
    }
    for (i, reference) in cfg.server.api_tokens.iter().enumerate() {
        if reference.trim() != "auto" {
            secret::resolve(
                reference,
                &format!("server.api_tokens[{i}]"),
                &scratch,
                SecretKind::Token,
            )
            .map_err(anyhow::Error::msg)?;
        }
    }
    Ok(format!(
        "{} source(s), {} template(s) compiled, {} instrument(s), paper accounts: {}",
        cfg.sources.len(),
        templates.names().len(),
        cfg.instruments.len(),
        cfg.paper.accounts.join(", ")
    ))
}

/// Every source's template (and allowed templates) must exist.
fn check_source_templates(cfg: &Config, templates: &Templates) -> anyhow::Result<()> {
    for (name, s) in &cfg.sources {
        for (key, t) in std::iter::once(("template", &s.template))
            .chain(s.allowed_templates.iter().map(|t| ("allowed_templates", t)))
        {
            if !templates.contains(t) {
                anyhow::bail!(
                    "sources.{name}.{key}: no template named '{t}'; available: {}",
                    templates.names().join(", ")
                );
            }
        }
    }
    Ok(())
}

fn resolve_api_tokens(
    cfg: &Config,
    data_dir: &std::path::Path,
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<Secret>> {
    let mut tokens = Vec::new();
    for (i, reference) in cfg.server.api_tokens.iter().enumerate() {
        let key = format!("server.api_tokens[{i}]");
        let auto = data_dir.join("secrets").join(format!("api-token-{i}"));
        let (s, origin) = secret::resolve(reference, &key, &auto, SecretKind::Token)
            .map_err(anyhow::Error::msg)?;
        note_origin(notes, &key, &origin);
        tokens.push(s);
    }
    if let Ok(t) = std::env::var("RELAY_API_TOKEN") {
        if !t.trim().is_empty() {
            tokens.push(Secret::new(t.trim()));
            notes.push("API token: RELAY_API_TOKEN from the environment is accepted".into());
        }
    }
    if tokens.is_empty() {
        let path: PathBuf = data_dir.join("api-token");
        let (s, origin) = secret::resolve("auto", "server.api_tokens", &path, SecretKind::Token)
            .map_err(anyhow::Error::msg)?;
        note_origin(notes, "API token", &origin);
        tokens.push(s);
    }
    Ok(tokens)
}

fn note_origin(notes: &mut Vec<String>, what: &str, origin: &Origin) {
    match origin {
        Origin::Generated(p) => notes.push(format!(
            "{what}: generated into {} (mode 0600)",
            p.display()
        )),
        Origin::Auto(p) => notes.push(format!("{what}: {}", p.display())),
        Origin::Inline => {
            tracing::warn!("{what} is written inline in the config; prefer env:NAME or file:PATH");
        }
        Origin::Env(_) | Origin::File(_) => {}
    }
}

/// Loopback, for requests whose peer address is unknown (in-process tests).
pub const UNKNOWN_PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
