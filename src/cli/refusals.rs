//! `refusals`: the running relay's most recent refused webhooks (`GET /api/refusals`), newest first.

use std::io::Write;

use anyhow::bail;
use serde_json::Value;

use super::args::Location;
use super::store::{open, Store};

/// Runs `refusals`. They live in the running relay's memory, so a stopped relay has none to show.
pub fn refusals(at: Location, limit: usize, json: bool) -> anyhow::Result<()> {
    let rt = super::command_runtime()?;
    rt.block_on(async move {
        let (_, store) = open(&at)?;
        let Store::Remote(remote) = store else {
            bail!("no running relay for this data dir: refusals are kept in the running relay's memory (GET /api/refusals); start it with alert-relay serve");
        };
        let v = remote.refusals(limit).await?;
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            return Ok(());
        }
        let list = v["refusals"].as_array().cloned().unwrap_or_default();
        writeln!(out, "{:<26}  {:<14}  {:<15}  STATUS  REASON", "AT", "SOURCE", "ADDRESS")?;
        for r in &list {
            let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
            writeln!(
                out,
                "{:<26}  {:<14}  {:<15}  {:<6}  {}",
                text("at"),
                text("source"),
                text("address"),
                r["status"].as_u64().unwrap_or(0),
                text("reason")
            )?;
            if let Some(h) = r.get("hint").and_then(Value::as_str) {
                writeln!(out, "{:<68}hint: {h}", "")?;
            }
        }
        writeln!(out, "{} refusal(s)", list.len())?;
        Ok(())
    })
}
