//! What `alerts` and `replay` print. The formats are stable and documented in the README ("Replay and
//! inspection"):
//! - `alerts list`: a fixed-column table, newest first; `--json`: `{"alerts": [...], "count": N}` as the API.
//! - `alerts show`: `key: value` lines; `--json`: the record as `GET /api/alerts/{id}` returns it.
//! - `alerts export`: one record JSON per line, oldest first (chronological, like a replay runs them).
//! - `replay`: one block per record (original request vs now, `CHANGED`/`same`, outcome), then a summary;
//!   `--json`: one document `{"to", "results": [...], "summary": {...}}`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::args::{ReplayArgs, Target};
use crate::command::Command;
use crate::domain::PositionGate;
use crate::record::AlertRecord;
use crate::replay::Plan;

pub(super) fn write_jsonl(w: &mut impl Write, recs: &[AlertRecord]) -> anyhow::Result<()> {
    for r in recs {
        serde_json::to_writer(&mut *w, r)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// `Sim101 Buy 2 ES 12-26 tp 6010 sl 5995`, `Sim101 PlaceOrder Buy 1 ES 12-26 MARKET`,
/// `Sim101 ClosePosition ES 12-26`.
pub fn request_text(c: &Command) -> String {
    let mut s = match c {
        Command::CancelAndBracket(r) => {
            let qty = if r.relay.quantity_from_position && r.quantity == 0 {
                "position".to_string()
            } else {
                r.quantity.to_string()
            };
            let mut s = format!("{} {} {} {}", r.account, r.action, qty, r.instrument);
            if let Some(tp) = r.take_profit {
                s.push_str(&format!(" tp {tp}"));
            }
            if let Some(sl) = r.stop_loss {
                s.push_str(&format!(" sl {sl}"));
            }
            if r.relay.entry {
                s.push_str(" entry");
            }
            s
        }
        Command::PlaceOrder(r) => {
            let mut s = format!(
                "{} PlaceOrder {} {} {} {:?}",
                r.account, r.action, r.quantity, r.instrument, r.order_type
            );
            if let Some(p) = r.limit_price.or(r.stop_price) {
                s.push_str(&format!(" @ {p}"));
            }
            s
        }
        Command::ClosePosition(r) => format!("{} ClosePosition {}", r.account, r.instrument),
    };
    if let Some(g) = c.relay().position.filter(|g| *g != PositionGate::Any) {
        s.push_str(&format!(" [position {}]", g.as_str()));
    }
    s
}

/// `Buy 2 ES 12-26`, `Close ES 12-26`: the short form of the alerts table.
fn request_brief(c: &Command) -> String {
    match c {
        Command::CancelAndBracket(r) => format!("{} {} {}", r.action, r.quantity, r.instrument),
        Command::PlaceOrder(r) => format!("Enter {} {} {}", r.action, r.quantity, r.instrument),
        Command::ClosePosition(r) => format!("Close {}", r.instrument),
    }
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
pub(super) fn write_table(out: &mut impl Write, recs: &[AlertRecord]) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<26}  {:<24}  {:<14}  {:<10}  {:<22}  REASON",
        "ID", "RECEIVED", "SOURCE", "STATUS", "REQUEST"
    )?;
    for r in recs {
        let request = match r.executions.first() {
            Some(e) => {
                let mut s = request_brief(&e.request);
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
pub(super) fn write_record(out: &mut impl Write, r: &AlertRecord) -> anyhow::Result<()> {
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
        if let Some(by) = e.settled_by {
            let by = match by {
                crate::record::SettledBy::Broker => "the broker",
                crate::record::SettledBy::Operator => "an operator",
            };
            let what = e.settled_seen.as_deref().or(e.settled_note.as_deref());
            writeln!(
                out,
                "     settled by {by}{}",
                what.filter(|w| !w.is_empty())
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}

/// The plan of a replay as this command reports it (from [`Plan`] or from the server's answer).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PlanView {
    pub template: Option<String>,
    pub original: Vec<Command>,
    pub now: Vec<Command>,
    pub skipped: Option<String>,
    pub error: Option<String>,
    /// A newer alert that executed on the lane (the replay is refused unless `--force`).
    pub stale: Option<String>,
}

impl PlanView {
    pub(super) fn from_plan(p: &Plan) -> PlanView {
        PlanView {
            template: p.template.clone(),
            original: p.original.clone(),
            now: p.now.clone(),
            skipped: p.skipped.clone(),
            error: p.error.clone(),
            stale: p.stale.clone(),
        }
    }

    pub(super) fn changed(&self) -> bool {
        Plan {
            original_id: String::new(),
            template: None,
            original: self.original.clone(),
            now: self.now.clone(),
            skipped: None,
            error: None,
            stale: None,
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

/// One record's block:
/// ```text
/// <id>  <received>  <source>  template <name>  CHANGED|same
///   was  <request> | (nothing sent)
///   now  <request> | (skipped: reason) | (error: reason)
///   ->   <outcome> [as <new id>] [: reason]
/// ```
pub(super) fn write_result(
    out: &mut impl Write,
    to: Target,
    r: &ReplayResult,
) -> std::io::Result<()> {
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
    if let Some(newer) = &r.plan.stale {
        writeln!(out, "  STALE: lane has newer alert {newer}")?;
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

pub(super) fn report(args: &ReplayArgs, results: &[ReplayResult]) -> anyhow::Result<()> {
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
    let not_executed: usize = ["failed", "rejected", "unknown"]
        .iter()
        .filter_map(|k| counts.get(*k))
        .sum();
    if not_executed > 0 {
        bail!("{not_executed} replayed execution(s) did not succeed (failed, rejected or unknown): see the records above");
    }
    Ok(())
}
