//! The pipeline, top to bottom:
//! verify → parse → render → dedupe → limit → record (durable) → acknowledge → execute in order.
//!
//! Webhooks, the CrossTrade-compatible API and replays all go through here, so they share the journal, the
//! idempotency keys, the per-instrument lanes and the outbound limit. One file per stage:
//! - `ingest`: a webhook in: authenticate, parse, render, choose the key, dedupe, limit;
//! - `admission`: record an alert durably and queue its executions (every path ends here);
//! - `query`: one alert, and filtered listings of the journal;
//! - `accounts`: every account's positions, working orders and OCO pairs, for the dashboard;
//! - `status`: health, readiness, metrics;
//! - `lifecycle`: start-up recovery, maintenance, settling unknown outcomes, shutdown;
//! - `resolve`: an operator settles an `unknown` execution;
//! - `check`: `alert-relay check`, which verifies what `serve` would, writing nothing;
//! - `routes`: where each source's alerts go (paper or live), printed by `check` and `serve`.
//! - `contracts`: contract months at run time: start-up lines, positions left in a rolled month.
//!
//! This file holds the [`Relay`] itself, built from the config.

mod accounts;
pub(crate) mod admission;
mod check;
mod contracts;
mod ingest;
mod lifecycle;
mod query;
mod resolve;
mod routes;
mod status;

pub use crate::settle::Resolution;
pub use accounts::AccountView;
pub use check::{check, load_templates, Checked};
use check::{check_source_templates, render_samples};
pub use contracts::old_months_on_paper;
use query::LISTINGS_AT_ONCE;
pub use routes::{routes, Routes};
pub use status::Health;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};

use crate::clock::{now_ms, Clock, SystemClock, Timestamp};
use crate::config::{Config, HealthStatusCode};
use crate::domain::{BracketRequest, RequestError};
use crate::engine::{Engine, ExecJob, RetryPolicy, Step, Waiters};
use crate::error::{RelayError, KILL_SWITCH_REASON};
use crate::executor::Executor;
use crate::headers::Headers;
use crate::instruments::Instruments;
use crate::journal::{Admission, Journal, KnownState, ListFilter};
use crate::limits::{AuthFailureLimit, InboundLimits, OutboundLimit};
use crate::metrics::Metrics;
use crate::notify::{Event, Notifier};
use crate::paper::PaperBroker;
use crate::record::{AlertRecord, Attempt, Execution, KeyOrigin, Status};
use crate::secret::{self, Origin, Secret, SecretKind};
use crate::sequencer::Sequencer;
use crate::settle::{SettlePolicy, Settler, Unsettled, UnsettledSet};
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

/// A webhook as received. The transport fills it in; the relay decides everything else.
pub struct Inbound {
    pub source: String,
    pub peer: IpAddr,
    pub headers: Headers,
    pub query_token: Option<String>,
    pub body: bytes::Bytes,
    pub received: Instant,
    /// How long the sender is willing to wait for the final outcome (HTTP: `Prefer: wait=N`), capped at
    /// [`MAX_PREFER_WAIT_SECS`]; `None` answers as soon as the alert is durable.
    pub wait: Option<Duration>,
}

/// What became of a webhook that was taken.
#[derive(Debug)]
pub enum Ingested {
    /// Recorded durably and queued in its lane.
    Accepted { alert_id: String },
    /// Recorded durably; the template chose not to trade.
    Skipped {
        alert_id: String,
        reason: Option<String>,
    },
    /// Recorded, and finished within the wait the sender asked for.
    Finished(AlertRecord),
    /// A repeated delivery: the original's record; nothing new was recorded or executed.
    Repeat(AlertRecord),
}

/// The outcome of a synchronous CancelAndBracket call (the CrossTrade-compatible API).
#[derive(Debug)]
pub struct CallOutcome {
    /// The execution in its final state.
    pub execution: Execution,
    /// A repeated call (same `Idempotency-Key`): the original's execution; nothing was sent again.
    pub repeat: bool,
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
    /// The most recent refused webhooks (`GET /api/refusals`).
    pub refusals: crate::refusals::RefusalLog,
    /// Sends events to the `[notify]` channels, in the background.
    pub notifier: Arc<Notifier>,
    sources: HashMap<String, Source>,
    engine: Arc<Engine>,
    sequencer: Arc<Sequencer<ExecJob, Engine>>,
    inbound: InboundLimits,
    auth_failures: AuthFailureLimit,
    api_tokens: Vec<Secret>,
    accepting: AtomicBool,
    kill_switch: Arc<AtomicBool>,
    health_status: HealthStatusCode,
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
    /// The clock contract months resolve by (an alert's receipt, an API call): the wall clock, or a fixed
    /// time (`serve --contracts-at`, tests across a roll).
    contracts_clock: Arc<dyn Clock>,
    /// Live positions in a rolled month, as last asked (start-up, then daily).
    live_old_months: std::sync::Mutex<Vec<crate::contracts::holdings::OldMonthHolding>>,
}

impl Relay {
    /// Builds the relay from a validated config: opens the journal and the paper account, resolves secrets,
    /// compiles templates. Returns notes to print (generated secrets and where they are).
    pub fn build(cfg: &Config) -> anyhow::Result<(Arc<Relay>, StartupNotes)> {
        let mut notes = Vec::new();
        let data_dir = cfg.data_dir();
        let instruments = Arc::new(cfg.instruments()?);
        let templates = Arc::new(load_templates(cfg, &instruments)?);
        check_source_templates(cfg, &templates)?;
        let routes = routes(cfg, &templates);
        notes.extend(routes.lines);
        for warning in routes.warnings {
            tracing::warn!("{warning}");
        }
        // `check` fails on these; a running relay would fail every alert of the template instead.
        for failure in render_samples(cfg, &templates).failures {
            tracing::warn!("{failure}");
        }

        let mut sources = HashMap::new();
        for (name, sc) in &cfg.sources {
            let (src, origin) = Source::from_config(name, sc, &data_dir)?;
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
                secret::resolve(&ct.token, "crosstrade.token", &unused, SecretKind::Token)?;
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
        let notifier = Arc::new(Notifier::start(&cfg.notify, metrics.clone())?);
        if !cfg.notify.channels.is_empty() {
            notes.push(format!("notifications: {}", notifier.describe().join(", ")));
        }
        let o = &cfg.limits.outbound;
        // Filled by `recover`, which scans the journal once at start-up.
        let unknown = Arc::new(UnsettledSet::default());
        let persisted_kill = journal.meta_get(KILL_SWITCH_KEY)?.as_deref() == Some("on");
        let kill_switch = Arc::new(AtomicBool::new(cfg.execution.kill_switch || persisted_kill));
        let x = &cfg.execution;
        let outbound = Arc::new(OutboundLimit::new(
            o.per_second,
            o.burst,
            Duration::from_millis(o.max_wait_ms),
        ));
        let settler = Arc::new(Settler {
            journal: journal.clone(),
            executors: executors.clone(),
            outbound: outbound.clone(),
            metrics: metrics.clone(),
            unknown,
            notifier: notifier.clone(),
            policy: SettlePolicy {
                give_up_after: Duration::from_secs(x.settle_for_secs),
                ..SettlePolicy::default()
            },
        });
        let engine = Arc::new(Engine {
            settler: settler.clone(),
            journal: journal.clone(),
            policy: RetryPolicy {
                max_age: Duration::from_secs(x.max_age_secs),
                backoff: Duration::from_millis(x.retry_backoff_ms.max(1)),
                backoff_max: Duration::from_millis(
                    x.retry_backoff_max_ms.max(x.retry_backoff_ms).max(1),
                ),
            },
            kill_switch: kill_switch.clone(),
            executors,
            outbound,
            waiters: Waiters::default(),
            metrics: metrics.clone(),
            notifier: notifier.clone(),
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
            retention: Duration::from_secs(cfg.journal.retention_days.saturating_mul(86_400)),
            max_records: cfg.journal.max_records,
            max_age: Duration::from_secs(cfg.execution.max_age_secs),
            listings: Arc::new(tokio::sync::Semaphore::new(LISTINGS_AT_ONCE)),
            kill_switch,
            health_status: cfg.server.health_status_code,
            refusals: crate::refusals::RefusalLog::default(),
            notifier,
            now_unix: Box::new(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0)
            }),
            contracts_clock: Arc::new(SystemClock),
            live_old_months: std::sync::Mutex::new(Vec::new()),
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

    /// Replaces the clock contract months resolve by, for the relay and its paper account (a roll tried out
    /// before it happens; tests on either side of a roll).
    pub fn with_contracts_clock(self: Arc<Self>, clock: Arc<dyn Clock>) -> Arc<Self> {
        let mut me = Arc::try_unwrap(self).unwrap_or_else(|_| {
            panic!("with_contracts_clock must be called before the relay is shared")
        });
        me.paper.set_contracts_clock(clock.clone());
        me.contracts_clock = clock;
        Arc::new(me)
    }

    /// Now, by the contracts clock: the time a continuous symbol resolves at.
    pub fn contracts_now(&self) -> Timestamp {
        self.contracts_clock.now()
    }

    pub fn source_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.sources.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn has_executor(&self, account: &str) -> bool {
        self.engine.executors.contains_key(account)
    }

    /// The unsettled `unknown` executions (kept by the engine's settler).
    fn unknown(&self) -> &UnsettledSet {
        &self.engine.settler.unknown
    }

    pub fn kill_switch_on(&self) -> bool {
        self.kill_switch.load(Ordering::SeqCst)
    }

    /// Turns the kill switch on or off, durably (it survives a restart).
    pub async fn set_kill_switch(&self, enabled: bool) -> Result<(), RelayError> {
        self.journal
            .meta_set(KILL_SWITCH_KEY, if enabled { "on" } else { "off" })?;
        self.journal.sync().await?;
        let was = self.kill_switch.swap(enabled, Ordering::SeqCst);
        tracing::warn!(enabled, "kill switch changed");
        if was != enabled {
            self.notifier.notify(Event::KillSwitch { on: enabled });
        }
        Ok(())
    }

    /// Keeps a refused webhook in the refusal log; the refusal that starts a burst from a configured source
    /// (more than [`crate::refusals::BURST_OVER`] in [`crate::refusals::BURST_WINDOW`]) is notified, once
    /// per window.
    pub fn refused(
        &self,
        source: &str,
        address: &str,
        status: u16,
        reason: &str,
        hint: Option<&str>,
    ) {
        use crate::refusals::{BURST_OVER, BURST_WINDOW};
        self.refusals.push(source, address, status, reason, hint);
        if !self.sources.contains_key(source) {
            return;
        }
        let since = now_ms().saturating_sub(BURST_WINDOW.as_millis() as u64);
        if let Some((count, reason)) = self.refusals.burst_started(source, since, BURST_OVER) {
            self.notifier.notify(Event::RefusalBurst {
                source: source.to_string(),
                count,
                window_secs: BURST_WINDOW.as_secs(),
                reason,
            });
        }
    }

    /// Is `presented` one of the API bearer tokens?
    pub fn api_token_ok(&self, presented: &str) -> bool {
        let mut ok = false;
        for t in &self.api_tokens {
            ok |= crate::verify::token_matches(t.expose().as_bytes(), presented.as_bytes());
        }
        ok
    }

    pub(super) fn account_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.engine.executors.keys().cloned().collect();
        v.sort();
        v
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
}

/// The JSON answer for a record: the record with `alertId` beside `id`.
pub fn record_reply(rec: &AlertRecord) -> Value {
    let mut v = serde_json::to_value(rec).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("alertId".into(), Value::String(rec.id.clone()));
    }
    v
}

pub(super) fn resolve_api_tokens(
    cfg: &Config,
    data_dir: &std::path::Path,
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<Secret>> {
    let mut tokens = Vec::new();
    for (i, reference) in cfg.server.api_tokens.iter().enumerate() {
        let key = format!("server.api_tokens[{i}]");
        let auto = data_dir.join("secrets").join(format!("api-token-{i}"));
        let (s, origin) = secret::resolve(reference, &key, &auto, SecretKind::Token)?;
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
        let (s, origin) = secret::resolve("auto", "server.api_tokens", &path, SecretKind::Token)?;
        note_origin(notes, "API token", &origin);
        tokens.push(s);
    }
    Ok(tokens)
}

pub(super) fn note_origin(notes: &mut Vec<String>, what: &str, origin: &Origin) {
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
