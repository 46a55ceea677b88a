//! `render`: prints the CancelAndBracket request(s) an alert would produce, without executing anything.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;

use crate::clock::{Clock, SystemClock};
use crate::config::load_config;
use crate::template::Rendered;

pub(super) fn render(
    path: Option<&Path>,
    template: &str,
    alert: &str,
    source: &str,
    at: Option<&str>,
) -> anyhow::Result<()> {
    let cfg = load_config(path, None, None)?;
    let at = match at {
        Some(s) => super::contracts::parse_at(s, "--at")?,
        None => SystemClock.now(),
    };
    let raw = if alert == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read the alert from standard input")?;
        buf
    } else {
        std::fs::read(alert).with_context(|| format!("cannot read alert file {alert}"))?
    };
    let instruments = Arc::new(cfg.instruments().map_err(anyhow::Error::msg)?);
    let templates = crate::relay::load_templates(&cfg, &instruments)?;
    let mut body =
        crate::body::parse(&raw, None).map_err(|e| anyhow::anyhow!("unparsable alert: {e}"))?;
    // Never echo a shared secret back, whatever the field is called in the configured sources.
    for s in cfg.sources.values() {
        body.take_secret(&s.token_field);
    }
    let out = match templates.render_at(template, &body.fields, source, at)? {
        Rendered::Skipped { reason, key } => json!({
            "template": template, "skipped": true, "reason": reason, "idempotencyKey": key,
        }),
        Rendered::Requests { key, requests } => json!({
            "template": template, "idempotencyKey": key, "requests": requests,
        }),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
