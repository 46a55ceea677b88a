//! `check`: validates the config, resolves its secret references, compiles every template and renders it
//! against its sample; prints where each source's alerts go (warnings on standard error), which contract
//! months the roots resolve to, warns of a roll less than 5 days away and of deprecated per-month entries,
//! and lists paper positions and orders left in a month that has rolled.

use std::path::Path;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::{load_config, Config};
use crate::contracts::report::startup_lines;
use crate::instruments::Instruments;
use crate::journal::Journal;
use crate::paper::PaperBroker;
use crate::relay::old_months_on_paper;

pub(super) fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let cfg = load_config(path, None, None)?;
    let checked = crate::relay::check(&cfg)?;
    for line in &checked.routes.lines {
        println!("{line}");
    }
    for warning in checked
        .routes
        .warnings
        .iter()
        .chain(&checked.sample_warnings)
    {
        eprintln!("warning: {warning}");
    }
    if !checked.sample_failures.is_empty() {
        anyhow::bail!(
            "{}: a template does not render its sample alert:\n{}",
            cfg.origin,
            checked.sample_failures.join("\n")
        );
    }
    println!("{}: OK — {}", cfg.origin, checked.summary);
    let instruments = Arc::new(cfg.instruments()?);
    let now = SystemClock.now();
    for line in startup_lines(&instruments, now) {
        println!("{line}");
    }
    println!("{}", old_month_line(&cfg, &instruments));
    Ok(())
}

/// The paper book's positions and working orders in a rolled month, read offline; a running relay holds
/// the journal, and reports them itself (`/healthz`). Live accounts are checked by `serve`.
fn old_month_line(cfg: &Config, instruments: &Arc<Instruments>) -> String {
    let live = if cfg.crosstrade.is_some() {
        "; live accounts are checked by serve at start-up and daily (WARN log, /healthz)"
    } else {
        ""
    };
    let dir = cfg.data_dir();
    if !dir.join("journal").exists() {
        return format!(
            "old contract months: no paper account yet in {}{live}",
            dir.display()
        );
    }
    let journal = match Journal::open_configured(&dir, &cfg.journal) {
        Ok(j) => j,
        Err(_) => {
            return format!(
                "old contract months: the running relay holds the paper account; see its /healthz{live}"
            )
        }
    };
    // No starting quotes: reading the book must not write to it.
    let mut paper_cfg = cfg.paper.clone();
    paper_cfg.initial_quotes.clear();
    let paper = match PaperBroker::open_beside_journal(
        &journal,
        paper_cfg,
        instruments.clone(),
        Arc::new(SystemClock),
    ) {
        Ok(p) => p,
        Err(e) => return format!("old contract months: cannot read the paper account: {e}{live}"),
    };
    let old = old_months_on_paper(&paper, paper.accounts(), instruments, SystemClock.now());
    if old.is_empty() {
        return format!("old contract months: none held on paper{live}");
    }
    let lines: Vec<String> = old
        .iter()
        .map(|h| format!("WARNING: old contract month: {h}"))
        .collect();
    format!("{}{live}", lines.join("\n"))
}
