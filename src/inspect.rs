//! The operator's command line over the journal: `alerts list|show|export` and `replay`.
//!
//! sled lets one process open a database, so every command first tries to open the data dir's journal
//! itself ([`Store::Local`]). When a running server holds it, the command talks to that server instead
//! ([`Store::Remote`]): `serve` writes `<data_dir>/server.json` (`{"url": ..., "pid": ...}`) after binding
//! and removes it on a clean exit. A stale file (server killed) is harmless: the journal then opens.
//!
//! Output formats are stable and documented in the README ("Replay and inspection"):
//! - `alerts list`: a fixed-column table, newest first; `--json`: `{"alerts": [...], "count": N}` as the API.
//! - `alerts show`: `key: value` lines; `--json`: the record as `GET /api/alerts/{id}` returns it.
//! - `alerts export`: one record JSON per line, oldest first (chronological, like a replay runs them).
//! - `replay`: one block per record (original request vs now, `CHANGED`/`same`, outcome), then a summary;
//!   `--json`: one document `{"to", "results": [...], "summary": {...}}`.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::Config;
use crate::domain::BracketRequest;
use crate::instruments::Instruments;
use crate::journal::{Journal, ListFilter};
use crate::record::AlertRecord;
use crate::relay::{record_reply, Relay};
use crate::replay::{Plan, ReplayOptions, ReplayTarget};
use crate::secret::{self, SecretKind};
use crate::template::Templates;

/// Where a running server announces itself, inside its data dir.
pub const SERVER_FILE: &str = "server.json";

/// Largest page the read API serves (`limit` ≤ 1000).
const API_PAGE: usize = 1000;

/// How long one replay may take to finish before its record is reported as still running.
const REPLAY_WAIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------------------ arguments

/// Where the journal is: the same `--config` / `--data-dir` as `serve`, and the API token for a running server.
#[derive(Args, Debug, Clone, Default)]
pub struct Location {
    /// Config file; without it the embedded default is used.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory, overrides server.data_dir.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// API token for a running server (default: RELAY_API_TOKEN, then server.api_tokens, then
    /// <data_dir>/api-token).
    #[arg(long, env = "RELAY_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Which records: the filters of `GET /api/alerts`.
#[derive(Args, Debug, Clone, Default)]
pub struct Filters {
    /// Only records in this status (accepted, executing, executed, failed, unknown, rejected, skipped,
    /// superseded, expired).
    #[arg(long)]
    pub status: Option<String>,
    /// Only records from this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Received at or after: RFC 3339, unix milliseconds, or an age such as 7d or 12h.
    #[arg(long)]
    pub since: Option<String>,
    /// Received at or before: same forms as --since.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many records (the newest).
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// List records, newest first (default limit 100).
    List {
        #[command(flatten)]
        at: Location,
        #[command(flatten)]
        filters: Filters,
        /// Print JSON ({"alerts": [...], "count": N}) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one record.
    Show {
        id: String,
        #[command(flatten)]
        at: Location,
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write every matching record as JSON lines, oldest first (archive, move machines, `replay --from-file`).
    Export {
        #[command(flatten)]
        at: Location,
        #[command(flatten)]
        filters: Filters,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Output file (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub at: Location,
    #[command(flatten)]
    pub filters: Filters,
    /// Replay this record (repeatable); the filters are not applied.
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,
    /// Replay the records of an `alerts export` file (the filters apply to them).
    #[arg(long, value_name = "FILE.jsonl")]
    pub from_file: Option<PathBuf>,
    /// dry-run prints what would be sent; paper executes on the paper account; live on the configured accounts.
    #[arg(long, value_enum, default_value_t = Target::DryRun)]
    pub to: Target,
    /// Render with this template instead of the one each record used.
    #[arg(long)]
    pub template: Option<String>,
    /// Send every request to this account instead.
    #[arg(long)]
    pub account: Option<String>,
    /// max (no wait), realtime (the original gaps between alerts), or Nx (the gaps divided by N, e.g. 10x).
    #[arg(long, default_value = "max")]
    pub pace: Pace,
    /// Confirm a live replay without the prompt.
    #[arg(long)]
    pub yes: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    DryRun,
    Paper,
    Live,
}

impl Target {
    fn replay_target(self) -> ReplayTarget {
        match self {
            Target::DryRun => ReplayTarget::DryRun,
            Target::Paper => ReplayTarget::Paper,
            Target::Live => ReplayTarget::Live,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Target::DryRun => "dry-run",
            Target::Paper => "paper",
            Target::Live => "live",
        }
    }
}

/// How fast a replay goes through its records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    Max,
    Realtime,
    /// The original gaps divided by this factor.
    Factor(f64),
}

impl std::str::FromStr for Pace {
    type Err = String;

    fn from_str(s: &str) -> Result<Pace, String> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "max" => Ok(Pace::Max),
            "realtime" | "1x" => Ok(Pace::Realtime),
            _ => s
                .strip_suffix('x')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| n.is_finite() && *n > 0.0)
                .map(Pace::Factor)
                .ok_or_else(|| format!("'{s}' is not a pace; use max, realtime or Nx (e.g. 10x)")),
        }
    }
}

impl Pace {
    /// The wait before a record received `gap_ms` after the previous one.
    pub fn delay(self, gap_ms: u64) -> Duration {
        match self {
            Pace::Max => Duration::ZERO,
            Pace::Realtime => Duration::from_millis(gap_ms),
            Pace::Factor(n) => Duration::from_secs_f64(gap_ms as f64 / 1000.0 / n),
        }
    }
}

// ------------------------------------------------------------------------------------------------ server.json

/// What a running server ([`crate::server`]) writes into `<data_dir>/server.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub url: String,
    pub pid: u32,
}

/// Announces a server bound to `bound` (an unspecified address is announced as loopback). Written to a
/// temporary file and renamed, so a reader never sees half of it.
pub fn write_server_file(data_dir: &Path, bound: SocketAddr) -> std::io::Result<PathBuf> {
    let mut addr = bound;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let info = ServerInfo {
        url: format!("http://{addr}"),
        pid: std::process::id(),
    };
    let path = data_dir.join(SERVER_FILE);
    let tmp = data_dir.join(format!("{SERVER_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(&info).unwrap_or_default())?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Removes the announcement on a clean exit.
pub fn remove_server_file(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(SERVER_FILE));
}

fn read_server_file(data_dir: &Path) -> Option<ServerInfo> {
    let raw = std::fs::read(data_dir.join(SERVER_FILE)).ok()?;
    serde_json::from_slice(&raw).ok()
}

// ------------------------------------------------------------------------------------------------ store

/// The journal, opened here or reached through the server that holds it.
pub enum Store {
    Local(Arc<Journal>),
    Remote(Remote),
}

#[derive(Clone)]
pub struct Remote {
    pub url: String,
    token: String,
    client: reqwest::Client,
}

impl Store {
    /// Opens the journal of `cfg`'s data dir, or connects to the server that holds it. Without `create`, a
    /// data dir that has no journal yet is an error (a mistyped --data-dir should not make an empty one).
    pub fn open(cfg: &Config, token: Option<&str>, create: bool) -> anyhow::Result<Store> {
        let dir = cfg.data_dir();
        if !create && !dir.join("journal").exists() && read_server_file(&dir).is_none() {
            bail!(
                "no journal in {}: check --data-dir / --config (server.data_dir)",
                dir.display()
            );
        }
        match Journal::open_configured(&dir, &cfg.journal) {
            Ok(j) => Ok(Store::Local(Arc::new(j))),
            Err(open_err) => match read_server_file(&dir) {
                Some(info) => Ok(Store::Remote(Remote::new(cfg, info, token)?)),
                None => Err(anyhow::Error::new(open_err).context(format!(
                    "no running server announced in {} either",
                    dir.join(SERVER_FILE).display()
                ))),
            },
        }
    }

    /// Records newest first; `limit` None: every matching record.
    pub async fn list(
        &self,
        f: &ListFilter,
        limit: Option<usize>,
    ) -> anyhow::Result<Vec<AlertRecord>> {
        match self {
            Store::Local(j) => {
                let mut f = f.clone();
                f.limit = limit.unwrap_or(usize::MAX);
                Ok(j.list(&f)?)
            }
            Store::Remote(r) => r.list(f, limit).await,
        }
    }

    pub async fn get(&self, id: &str) -> anyhow::Result<Option<AlertRecord>> {
        match self {
            Store::Local(j) => Ok(j.get(id)?),
            Store::Remote(r) => r.get(id).await,
        }
    }
}

impl Remote {
    fn new(cfg: &Config, info: ServerInfo, token: Option<&str>) -> anyhow::Result<Remote> {
        let token = api_token(cfg, token).with_context(|| {
            format!(
                "the journal is held by the server at {} (pid {})",
                info.url, info.pid
            )
        })?;
        let client = reqwest::Client::builder()
            .timeout(REPLAY_WAIT + Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Remote {
            url: info.url.trim_end_matches('/').to_string(),
            token,
            client,
        })
    }

    /// Sends a request; `Ok((status, body))` for any HTTP answer.
    async fn send(&self, rb: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let resp = rb.bearer_auth(&self.token).send().await.with_context(|| {
            format!(
                "cannot reach the server at {} announced in {SERVER_FILE}; if it is not running, remove that file",
                self.url
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .context("cannot read the server's answer")?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status == 401 {
            bail!(
                "the server at {} refused the API token: pass --token or set RELAY_API_TOKEN",
                self.url
            );
        }
        Ok((status, body))
    }

    async fn list(&self, f: &ListFilter, limit: Option<usize>) -> anyhow::Result<Vec<AlertRecord>> {
        let want = limit.unwrap_or(usize::MAX);
        let mut out: Vec<AlertRecord> = Vec::new();
        let mut seen = HashSet::new();
        let mut until = f.until_ms;
        // Pages walk back in time with `until` = the oldest time seen (inclusive, so records sharing that
        // millisecond are not lost; the ones already seen are dropped by id).
        loop {
            let page = (want - out.len()).min(API_PAGE);
            let mut q: Vec<(&str, String)> = vec![("limit", page.to_string())];
            if let Some(s) = f.status {
                q.push(("status", s.as_str().to_string()));
            }
            if let Some(s) = &f.source {
                q.push(("source", s.clone()));
            }
            if let Some(s) = f.since_ms {
                q.push(("since", s.to_string()));
            }
            if let Some(u) = until {
                q.push(("until", u.to_string()));
            }
            let (status, body) = self
                .send(
                    self.client
                        .get(format!("{}/api/alerts", self.url))
                        .query(&q),
                )
                .await?;
            if status != 200 {
                bail!("listing alerts failed ({status}): {}", error_text(&body));
            }
            let recs: Vec<AlertRecord> = serde_json::from_value(body["alerts"].clone())
                .context("the server answered with records this CLI cannot read")?;
            let full = recs.len() >= page;
            let mut new = 0;
            for r in recs {
                until = Some(r.received_at_ms);
                if seen.insert(r.id.clone()) {
                    new += 1;
                    out.push(r);
                }
            }
            if !full || new == 0 || out.len() >= want {
                break;
            }
        }
        out.truncate(want);
        Ok(out)
    }

    async fn get(&self, id: &str) -> anyhow::Result<Option<AlertRecord>> {
        let (status, body) = self
            .send(
                self.client
                    .get(format!("{}/api/alerts/{}", self.url, url_segment(id))),
            )
            .await?;
        match status {
            200 => Ok(Some(
                serde_json::from_value(body)
                    .context("the server answered with an unreadable record")?,
            )),
            404 => Ok(None),
            _ => bail!(
                "reading alert {id} failed ({status}): {}",
                error_text(&body)
            ),
        }
    }

    /// `POST /api/alerts/{id}/replay`: the new (or, for a dry run, the original) record and the plan.
    async fn replay(
        &self,
        id: &str,
        to: Target,
        opts: &ReplayOptions,
    ) -> Result<(AlertRecord, PlanView, bool), String> {
        let body = json!({"to": to.as_str(), "template": opts.template, "account": opts.account});
        let (status, v) = self
            .send(
                self.client
                    .post(format!(
                        "{}/api/alerts/{}/replay",
                        self.url,
                        url_segment(id)
                    ))
                    .json(&body),
            )
            .await
            .map_err(|e| format!("{e:#}"))?;
        if !(200..300).contains(&status) {
            return Err(format!("{} ({status})", error_text(&v)));
        }
        let rec: AlertRecord = serde_json::from_value(v["alert"].clone())
            .map_err(|e| format!("unreadable replay answer: {e}"))?;
        let plan: PlanView = serde_json::from_value(v["plan"].clone())
            .map_err(|e| format!("unreadable replay plan: {e}"))?;
        let changed = v["changed"].as_bool().unwrap_or_else(|| plan.changed());
        Ok((rec, plan, changed))
    }
}

/// Record ids are ULIDs; anything else is percent-encoded so it stays one path segment.
fn url_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn error_text(body: &Value) -> String {
    body.get("error")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string())
}

/// The token for a running server: `--token`/`RELAY_API_TOKEN`, else the first of `server.api_tokens`
/// that resolves, else the generated `<data_dir>/api-token` (what the server uses when none is configured).
pub fn api_token(cfg: &Config, flag: Option<&str>) -> anyhow::Result<String> {
    if let Some(t) = flag.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(t.to_string());
    }
    let dir = cfg.data_dir();
    let mut problems = Vec::new();
    for (i, reference) in cfg.server.api_tokens.iter().enumerate() {
        let key = format!("server.api_tokens[{i}]");
        if reference.trim() == "auto" {
            // Read only: generating a token the server does not know would not help.
            let path = dir.join("secrets").join(format!("api-token-{i}"));
            match std::fs::read_to_string(&path) {
                Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
                _ => problems.push(format!("{key}: {} is missing", path.display())),
            }
            continue;
        }
        match secret::resolve(reference, &key, &dir.join("unused"), SecretKind::Token) {
            Ok((s, _)) => return Ok(s.expose().to_string()),
            Err(e) => problems.push(e),
        }
    }
    let generated = dir.join("api-token");
    if let Ok(t) = std::fs::read_to_string(&generated) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    problems.push(format!("{} is missing", generated.display()));
    bail!(
        "no API token: pass --token or set RELAY_API_TOKEN ({})",
        problems.join("; ")
    )
}

// ------------------------------------------------------------------------------------------------ filters

impl Filters {
    fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.source.is_none()
            && self.since.is_none()
            && self.until.is_none()
            && self.limit.is_none()
    }

    /// The journal filter (its `limit` is set by the caller).
    pub fn to_list_filter(&self) -> anyhow::Result<ListFilter> {
        let status = match &self.status {
            None => None,
            Some(s) => Some(
                crate::journal::parse_status(s).map_err(|e| anyhow::anyhow!("--status: {e}"))?,
            ),
        };
        if self.limit == Some(0) {
            bail!("--limit: must be at least 1");
        }
        Ok(ListFilter {
            status,
            source: self.source.clone(),
            since_ms: self
                .since
                .as_deref()
                .map(|v| parse_time(v, "--since"))
                .transpose()?,
            until_ms: self
                .until
                .as_deref()
                .map(|v| parse_time(v, "--until"))
                .transpose()?,
            limit: 0,
        })
    }
}

/// A time: unix milliseconds, RFC 3339 (`2026-11-27T18:00:00Z`), or an age before now (`7d`, `12h`, `30m`).
pub fn parse_time(v: &str, flag: &str) -> anyhow::Result<u64> {
    crate::journal::parse_time(v).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

// ------------------------------------------------------------------------------------------------ alerts

/// Runs `alerts list|show|export`.
pub fn alerts(cmd: AlertsCommand) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async move {
        match cmd {
            AlertsCommand::List { at, filters, json } => {
                let (_, store) = open(&at)?;
                let f = filters.to_list_filter()?;
                let recs = store.list(&f, Some(filters.limit.unwrap_or(100))).await?;
                let mut out = std::io::stdout().lock();
                if json {
                    let v = json!({
                        "alerts": recs.iter().map(record_reply).collect::<Vec<_>>(),
                        "count": recs.len(),
                    });
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                } else {
                    write_table(&mut out, &recs)?;
                }
                Ok(())
            }
            AlertsCommand::Show { id, at, json } => {
                let (_, store) = open(&at)?;
                let rec = store
                    .get(&id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no alert with id '{id}'"))?;
                let mut out = std::io::stdout().lock();
                if json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(&record_reply(&rec))?
                    )?;
                } else {
                    write_record(&mut out, &rec)?;
                }
                Ok(())
            }
            AlertsCommand::Export {
                at,
                filters,
                format: ExportFormat::Jsonl,
                output,
            } => {
                let (_, store) = open(&at)?;
                let f = filters.to_list_filter()?;
                let mut recs = store.list(&f, filters.limit).await?;
                recs.reverse(); // oldest first
                let n = recs.len();
                match &output {
                    Some(path) => {
                        let file = std::fs::File::create(path)
                            .with_context(|| format!("cannot create {}", path.display()))?;
                        let mut w = std::io::BufWriter::new(file);
                        write_jsonl(&mut w, &recs)?;
                        w.flush()?;
                        eprintln!("exported {n} record(s) to {}", path.display());
                    }
                    None => write_jsonl(&mut std::io::stdout().lock(), &recs)?,
                }
                Ok(())
            }
        }
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn open(at: &Location) -> anyhow::Result<(Config, Store)> {
    let cfg = crate::cli::load_config(at.config.as_deref(), None, at.data_dir.clone())?;
    let store = Store::open(&cfg, at.token.as_deref(), false)?;
    Ok((cfg, store))
}

fn write_jsonl(w: &mut impl Write, recs: &[AlertRecord]) -> anyhow::Result<()> {
    for r in recs {
        serde_json::to_writer(&mut *w, r)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// `Sim101 Buy 2 ES 12-26 tp 6010 sl 5995`.
pub fn request_text(r: &BracketRequest) -> String {
    let mut s = format!("{} {} {} {}", r.account, r.action, r.quantity, r.instrument);
    if let Some(tp) = r.take_profit {
        s.push_str(&format!(" tp {tp}"));
    }
    if let Some(sl) = r.stop_loss {
        s.push_str(&format!(" sl {sl}"));
    }
    s
}

fn clip(s: &str, n: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= n {
        s
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// The `alerts list` table. Columns: ID, RECEIVED, SOURCE, STATUS, REQUEST (action, quantity and instrument
/// of the first request, `+N` more), REASON (clipped; `replay of ID` for a replay without a reason).
fn write_table(out: &mut impl Write, recs: &[AlertRecord]) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<26}  {:<24}  {:<14}  {:<10}  {:<22}  REASON",
        "ID", "RECEIVED", "SOURCE", "STATUS", "REQUEST"
    )?;
    for r in recs {
        let request = match r.executions.first() {
            Some(e) => {
                let mut s = format!(
                    "{} {} {}",
                    e.request.action, e.request.quantity, e.request.instrument
                );
                if r.executions.len() > 1 {
                    s.push_str(&format!(" +{}", r.executions.len() - 1));
                }
                s
            }
            None => "-".into(),
        };
        let reason = match (&r.reason, &r.replay_of) {
            (Some(reason), _) => clip(reason, 48),
            (None, Some(of)) => format!("replay of {of}"),
            (None, None) => String::new(),
        };
        let line = format!(
            "{:<26}  {:<24}  {:<14}  {:<10}  {:<22}  {}",
            r.id,
            r.received_at,
            clip(&r.source, 14),
            r.status.as_str(),
            clip(&request, 22),
            reason
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    writeln!(out, "{} record(s)", recs.len())?;
    Ok(())
}

/// The `alerts show` text: one `key: value` line per field, then one line per execution.
fn write_record(out: &mut impl Write, r: &AlertRecord) -> anyhow::Result<()> {
    writeln!(out, "id:          {}", r.id)?;
    writeln!(out, "received:    {}", r.received_at)?;
    writeln!(out, "source:      {}", r.source)?;
    writeln!(out, "status:      {}", r.status.as_str())?;
    if let Some(reason) = &r.reason {
        writeln!(out, "reason:      {reason}")?;
    }
    writeln!(out, "template:    {}", r.template.as_deref().unwrap_or("-"))?;
    if let Some(k) = &r.idempotency_key {
        writeln!(out, "key:         {k}")?;
    }
    if let Some(of) = &r.replay_of {
        writeln!(out, "replay of:   {of}")?;
    }
    if let Some(ip) = &r.client_ip {
        writeln!(out, "client ip:   {ip}")?;
    }
    writeln!(out, "body:        {}", r.body)?;
    for (i, e) in r.executions.iter().enumerate() {
        let mut line = format!(
            "execution {}: {} -> {}",
            i + 1,
            request_text(&e.request),
            e.status.as_str()
        );
        if let Some(x) = &e.executor {
            line.push_str(&format!(" ({x})"));
        }
        if let Some(err) = &e.error {
            line.push_str(&format!(": {err}"));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------ replay

/// The plan of a replay as this command reports it (from [`Plan`] or from the server's answer).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PlanView {
    pub template: Option<String>,
    pub original: Vec<BracketRequest>,
    pub now: Vec<BracketRequest>,
    pub skipped: Option<String>,
    pub error: Option<String>,
}

impl PlanView {
    fn from_plan(p: &Plan) -> PlanView {
        PlanView {
            template: p.template.clone(),
            original: p.original.clone(),
            now: p.now.clone(),
            skipped: p.skipped.clone(),
            error: p.error.clone(),
        }
    }

    fn changed(&self) -> bool {
        Plan {
            original_id: String::new(),
            template: None,
            original: self.original.clone(),
            now: self.now.clone(),
            skipped: None,
            error: None,
        }
        .changed()
    }
}

/// One record's replay, as printed (and as `--json` results).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayResult {
    /// The record replayed.
    pub id: String,
    pub received_at: String,
    pub source: String,
    #[serde(flatten)]
    pub plan: PlanView,
    pub changed: bool,
    /// Dry run: `planned`, `skipped` or `error`. Otherwise the new record's status (`executed`, `failed`,
    /// `rejected`, `skipped`, `unknown`, ... or `executing` if still running after 30 s), or `error` when no
    /// replay record was made.
    pub outcome: String,
    /// The replay record (`replayOf` = `id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_id: Option<String>,
    /// Why the new record failed, or why the replay could not be made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A selected record and whether it comes from a file (and may be missing from the journal).
struct Selected {
    rec: AlertRecord,
    from_file: bool,
}

/// How records are replayed.
enum Runner {
    /// Dry run without a server: the templates of this config.
    Plan,
    /// Through the running server's API.
    Remote(Remote),
    /// A relay built in this process.
    Relay(Arc<Relay>),
}

/// Runs `replay`. Returns an error (exit 1) after the summary when some record could not be replayed.
pub fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    if args.to == Target::Live && !args.yes && !std::io::stdin().is_terminal() {
        bail!("refusing to replay to live accounts without confirmation: standard input is not a terminal; pass --yes to confirm (live accounts trade for real)");
    }
    if args.ids.is_empty() && args.from_file.is_none() && args.filters.is_empty() {
        bail!("choose what to replay: --id ID, --from-file FILE.jsonl, or filters (--since 7d, --status failed, --source NAME, --limit N)");
    }
    if !args.ids.is_empty() && args.from_file.is_some() {
        bail!("--id and --from-file cannot be combined");
    }
    let cfg = crate::cli::load_config(args.at.config.as_deref(), None, args.at.data_dir.clone())?;
    let instruments = Arc::new(cfg.instruments().map_err(anyhow::Error::msg)?);
    let templates = crate::relay::load_templates(&cfg, &instruments)?;
    if let Some(t) = &args.template {
        if !templates.contains(t) {
            bail!(
                "--template: no template named '{t}'; available: {}",
                templates.names().join(", ")
            );
        }
    }
    let opts = ReplayOptions {
        template: args.template.clone(),
        account: args.account.clone(),
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let file_dry_run = args.from_file.is_some() && args.to == Target::DryRun;
        // A dry run of an export file needs no journal at all: it renders with this config's templates.
        let (store, runner) = if file_dry_run {
            (None, Runner::Plan)
        } else {
            match Store::open(&cfg, args.at.token.as_deref(), args.to != Target::DryRun)? {
                Store::Remote(r) => (Some(Store::Remote(r.clone())), Runner::Remote(r)),
                Store::Local(j) if args.to == Target::DryRun => {
                    (Some(Store::Local(j)), Runner::Plan)
                }
                Store::Local(j) => {
                    // The relay opens the journal itself: sled allows one handle per process.
                    drop(j);
                    let (relay, _notes) = Relay::build(&cfg)?;
                    (
                        Some(Store::Local(relay.journal.clone())),
                        Runner::Relay(relay),
                    )
                }
            }
        };
        let selected = select(&args, store.as_ref()).await?;
        if args.to == Target::Live && !args.yes {
            confirm_live(selected.len())?;
        }
        let results = run(
            &args,
            &opts,
            &selected,
            &runner,
            store.as_ref(),
            &templates,
            &instruments,
        )
        .await;
        if let Runner::Relay(relay) = &runner {
            relay.shutdown().await;
        }
        report(&args, &results)
    })
}

async fn select(args: &ReplayArgs, store: Option<&Store>) -> anyhow::Result<Vec<Selected>> {
    let f = args.filters.to_list_filter()?;
    let mut out = Vec::new();
    if let Some(path) = &args.from_file {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut recs = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let rec: AlertRecord = serde_json::from_str(&line).with_context(|| {
                format!(
                    "{} line {}: not a record from `alerts export`",
                    path.display(),
                    i + 1
                )
            })?;
            if f.matches(&rec) {
                recs.push(rec);
            }
        }
        // Like the journal's listing: the newest `limit`.
        recs.sort_by(|a, b| (b.received_at_ms, &b.id).cmp(&(a.received_at_ms, &a.id)));
        recs.truncate(args.filters.limit.unwrap_or(usize::MAX));
        out.extend(recs.into_iter().map(|rec| Selected {
            rec,
            from_file: true,
        }));
    } else {
        let store = store.ok_or_else(|| anyhow::anyhow!("no journal to select from"))?;
        if args.ids.is_empty() {
            for rec in store.list(&f, args.filters.limit).await? {
                out.push(Selected {
                    rec,
                    from_file: false,
                });
            }
        } else {
            for id in &args.ids {
                let rec = store
                    .get(id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("--id: no alert with id '{id}'"))?;
                out.push(Selected {
                    rec,
                    from_file: false,
                });
            }
        }
    }
    // Chronological: that is the order they first ran in, and what --pace measures gaps on.
    out.sort_by(|a, b| (a.rec.received_at_ms, &a.rec.id).cmp(&(b.rec.received_at_ms, &b.rec.id)));
    Ok(out)
}

fn confirm_live(n: usize) -> anyhow::Result<()> {
    eprint!("About to replay {n} alert(s) to LIVE accounts: real orders will be sent. Type yes to continue: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("cannot read the confirmation")?;
    if answer.trim() != "yes" {
        bail!("live replay cancelled: the answer was not 'yes'");
    }
    Ok(())
}

async fn run(
    args: &ReplayArgs,
    opts: &ReplayOptions,
    selected: &[Selected],
    runner: &Runner,
    store: Option<&Store>,
    templates: &Templates,
    instruments: &Instruments,
) -> Vec<ReplayResult> {
    let bar = progress_bar(selected.len() as u64);
    let mut results = Vec::with_capacity(selected.len());
    let mut prev_ms: Option<u64> = None;
    for s in selected {
        if let Some(prev) = prev_ms {
            let wait = args.pace.delay(s.rec.received_at_ms.saturating_sub(prev));
            if !wait.is_zero() {
                bar.set_message(format!(
                    "waiting {}",
                    humantime::format_duration(round_ms(wait))
                ));
                tokio::time::sleep(wait).await;
            }
        }
        prev_ms = Some(s.rec.received_at_ms);
        bar.set_message(s.rec.id.clone());
        let r = replay_one(args.to, opts, s, runner, store, templates, instruments).await;
        if !args.json {
            bar.suspend(|| {
                let mut out = std::io::stdout().lock();
                let _ = write_result(&mut out, args.to, &r);
                let _ = out.flush();
            });
        }
        results.push(r);
        bar.inc(1);
    }
    bar.finish_and_clear();
    results
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// A bar on stderr, hidden when stderr is not a terminal (pipes, CI, tests).
fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {wide_msg}")
    {
        bar.set_style(style);
    }
    bar
}

async fn replay_one(
    to: Target,
    opts: &ReplayOptions,
    s: &Selected,
    runner: &Runner,
    store: Option<&Store>,
    templates: &Templates,
    instruments: &Instruments,
) -> ReplayResult {
    let rec = &s.rec;
    let mut result = ReplayResult {
        id: rec.id.clone(),
        received_at: rec.received_at.clone(),
        source: rec.source.clone(),
        plan: PlanView {
            template: opts.template.clone().or_else(|| rec.template.clone()),
            original: rec.executions.iter().map(|e| e.request.clone()).collect(),
            ..PlanView::default()
        },
        changed: false,
        outcome: "error".into(),
        new_id: None,
        reason: None,
    };
    let planned = |result: &mut ReplayResult, plan: PlanView, changed: bool| {
        result.outcome = if plan.error.is_some() {
            "error"
        } else if plan.skipped.is_some() {
            "skipped"
        } else {
            "planned"
        }
        .into();
        result.reason = plan.error.clone().or_else(|| plan.skipped.clone());
        result.changed = changed;
        result.plan = plan;
    };
    let executed = |result: &mut ReplayResult, new: AlertRecord, plan: PlanView, changed: bool| {
        result.outcome = new.status.as_str().into();
        result.reason = new.reason.clone();
        result.new_id = Some(new.id);
        result.changed = changed;
        result.plan = plan;
    };
    match runner {
        Runner::Plan => {
            let plan = crate::replay::plan(templates, instruments, rec, opts);
            let changed = plan.changed();
            planned(&mut result, PlanView::from_plan(&plan), changed);
        }
        Runner::Remote(remote) => {
            if to == Target::DryRun && s.from_file {
                let plan = crate::replay::plan(templates, instruments, rec, opts);
                let changed = plan.changed();
                planned(&mut result, PlanView::from_plan(&plan), changed);
                return result;
            }
            if s.from_file {
                match store {
                    Some(st) => match st.get(&rec.id).await {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            result.reason = Some("not in the running server's journal: stop the server to import and replay records from a file (or use --to dry-run)".into());
                            return result;
                        }
                        Err(e) => {
                            result.reason = Some(format!("{e:#}"));
                            return result;
                        }
                    },
                    None => return result,
                }
            }
            match remote.replay(&rec.id, to, opts).await {
                Ok((_, plan, changed)) if to == Target::DryRun => {
                    planned(&mut result, plan, changed)
                }
                Ok((new, plan, changed)) => executed(&mut result, new, plan, changed),
                Err(e) => result.reason = Some(e),
            }
        }
        Runner::Relay(relay) => {
            if s.from_file {
                // An exported record from elsewhere: import it so the replay can point to it.
                match relay.journal.get(&rec.id) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        if let Err(e) = relay.journal.insert(rec) {
                            result.reason = Some(format!("cannot import the record: {e}"));
                            return result;
                        }
                    }
                    Err(e) => {
                        result.reason = Some(format!("{e}"));
                        return result;
                    }
                }
            }
            match relay
                .replay(&rec.id, to.replay_target(), opts, REPLAY_WAIT)
                .await
            {
                Ok((new, plan)) => {
                    let changed = plan.changed();
                    let view = PlanView::from_plan(&plan);
                    if to == Target::DryRun {
                        planned(&mut result, view, changed)
                    } else {
                        executed(&mut result, new, view, changed)
                    }
                }
                Err(e) => result.reason = Some(e.to_string()),
            }
        }
    }
    result
}

/// One record's block:
/// ```text
/// <id>  <received>  <source>  template <name>  CHANGED|same
///   was  <request> | (nothing sent)
///   now  <request> | (skipped: reason) | (error: reason)
///   ->   <outcome> [as <new id>] [: reason]
/// ```
fn write_result(out: &mut impl Write, to: Target, r: &ReplayResult) -> std::io::Result<()> {
    writeln!(
        out,
        "{}  {}  {}  template {}  {}",
        r.id,
        r.received_at,
        r.source,
        r.plan.template.as_deref().unwrap_or("-"),
        if r.changed { "CHANGED" } else { "same" }
    )?;
    if r.plan.original.is_empty() {
        writeln!(out, "  was  (nothing sent)")?;
    }
    for q in &r.plan.original {
        writeln!(out, "  was  {}", request_text(q))?;
    }
    if let Some(e) = &r.plan.error {
        writeln!(out, "  now  (error: {e})")?;
    } else if let Some(s) = &r.plan.skipped {
        writeln!(out, "  now  (skipped: {s})")?;
    } else if r.plan.now.is_empty() && r.outcome == "error" {
        writeln!(out, "  now  (not rendered)")?;
    }
    for q in &r.plan.now {
        writeln!(out, "  now  {}", request_text(q))?;
    }
    let mut line = format!("  ->   {}", r.outcome);
    if to == Target::DryRun && r.outcome == "planned" {
        line.push_str(" (dry run: nothing sent)");
    }
    if let Some(id) = &r.new_id {
        line.push_str(&format!(" as {id} on {}", to.as_str()));
    }
    if let Some(reason) = &r.reason {
        if r.plan.error.as_ref() != Some(reason) && r.plan.skipped.as_ref() != Some(reason) {
            line.push_str(&format!(": {reason}"));
        }
    }
    writeln!(out, "{line}")
}

/// Outcome counts (sorted by name) and the alerts whose request changed.
fn summary(results: &[ReplayResult]) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut counts = BTreeMap::new();
    for r in results {
        *counts.entry(r.outcome.clone()).or_insert(0) += 1;
    }
    let changed = results
        .iter()
        .filter(|r| r.changed)
        .map(|r| r.id.clone())
        .collect();
    (counts, changed)
}

fn report(args: &ReplayArgs, results: &[ReplayResult]) -> anyhow::Result<()> {
    let (counts, changed) = summary(results);
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = json!({
            "to": args.to.as_str(),
            "results": results,
            "summary": {"total": results.len(), "outcomes": counts, "changed": changed},
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        let counts_text = counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let what = match args.to {
            Target::DryRun => "dry run of".to_string(),
            t => format!("replayed to {}:", t.as_str()),
        };
        writeln!(
            out,
            "summary: {what} {} alert(s): {counts_text}",
            results.len()
        )?;
        if changed.is_empty() {
            writeln!(out, "changed: none")?;
        } else {
            writeln!(out, "changed ({}): {}", changed.len(), changed.join(" "))?;
        }
    }
    out.flush()?;
    let errors = counts.get("error").copied().unwrap_or(0);
    if errors > 0 {
        bail!("{errors} alert(s) could not be replayed (outcome error)");
    }
    Ok(())
}
