//! The HTTP client of a running server's API ([`Remote`]): listing and reading records, replaying one, and
//! the API token it sends ([`api_token`]).

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::args::Target;
use super::output::PlanView;
use crate::config::Config;
use crate::journal::ListFilter;
use crate::record::AlertRecord;
use crate::replay::ReplayOptions;
use crate::secret::{self, SecretKind};
use crate::server::{ServerInfo, SERVER_FILE};
use crate::settle::Resolution;

/// Largest page the read API serves (`limit` ≤ 1000).
const API_PAGE: usize = 1000;

/// How long one replay may take to finish before its record is reported as still running.
pub(super) const REPLAY_WAIT: Duration = Duration::from_secs(30);

/// A running server's API, at the address it announced in its `server.json`.
#[derive(Clone)]
pub struct Remote {
    pub url: String,
    token: String,
    client: reqwest::Client,
}

impl Remote {
    pub(super) fn new(
        cfg: &Config,
        info: ServerInfo,
        token: Option<&str>,
    ) -> anyhow::Result<Remote> {
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

    pub(super) async fn list(
        &self,
        f: &ListFilter,
        limit: Option<usize>,
    ) -> anyhow::Result<Vec<AlertRecord>> {
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

    pub(super) async fn get(&self, id: &str) -> anyhow::Result<Option<AlertRecord>> {
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
    pub(super) async fn replay(
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

impl Remote {
    /// `GET /api/refusals?limit=N`: `{"refusals": [...], "count": N}`.
    pub(super) async fn refusals(&self, limit: usize) -> anyhow::Result<Value> {
        let (code, v) = self
            .send(
                self.client
                    .get(format!("{}/api/refusals", self.url))
                    .query(&[("limit", limit.max(1))]),
            )
            .await?;
        if code != 200 {
            anyhow::bail!("{} ({code})", error_text(&v));
        }
        Ok(v)
    }

    /// `POST /api/alerts/{id}/resolve`: the record as settled.
    pub(super) async fn resolve(
        &self,
        id: &str,
        how: Resolution,
        note: &str,
    ) -> anyhow::Result<AlertRecord> {
        let status = match how {
            Resolution::Executed => "executed",
            Resolution::Failed => "failed",
        };
        let (code, v) = self
            .send(
                self.client
                    .post(format!(
                        "{}/api/alerts/{}/resolve",
                        self.url,
                        url_segment(id)
                    ))
                    .json(&json!({"status": status, "note": note})),
            )
            .await?;
        if code != 200 {
            anyhow::bail!("{} ({code})", error_text(&v));
        }
        serde_json::from_value(v).map_err(|e| anyhow::anyhow!("unreadable resolve answer: {e}"))
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
            Err(e) => problems.push(e.to_string()),
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
