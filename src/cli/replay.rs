//! `replay`: selects stored (or exported) records and runs them again through the current templates, as a
//! dry run here, or for real through the running server or a relay built in this process; each result is
//! printed as it comes ([`super::output`]).

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use super::args::{ReplayArgs, Target};
use super::client::{Remote, REPLAY_WAIT};
use super::output::{report, write_result, PlanView, ReplayResult};
use super::store::Store;
use crate::clock::{Clock, SystemClock};
use crate::config::load_config;
use crate::error::RelayError;
use crate::instruments::Instruments;
use crate::record::AlertRecord;
use crate::relay::Relay;
use crate::replay::ReplayOptions;
use crate::template::Templates;

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
    let cfg = load_config(args.at.config.as_deref(), None, args.at.data_dir.clone())?;
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
        force: args.force,
        re_resolve: args.re_resolve,
    };
    let rt = super::command_runtime()?;
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
            if i == 0 {
                if let Some(version) = export_version(&line) {
                    if version != EXPORT_VERSION {
                        bail!(
                            "{}: export format version {version} is not known; this alert-relay reads version {EXPORT_VERSION} (export again with this version, or replay with the version that wrote it)",
                            path.display()
                        );
                    }
                    continue;
                }
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
    if args.not_replayed {
        out.retain(|s| s.rec.replayed_by.is_empty() && s.rec.replay_of.is_none());
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
    let newer = if args.every {
        Vec::new()
    } else {
        superseded_within(selected, opts)
    };
    let bar = progress_bar(selected.len() as u64);
    let mut results = Vec::with_capacity(selected.len());
    let mut prev_ms: Option<u64> = None;
    for (i, s) in selected.iter().enumerate() {
        if let Some(Some(by)) = newer.get(i) {
            let r = superseded_result(s, opts, by);
            if !args.json {
                bar.suspend(|| {
                    let _ = write_result(&mut std::io::stdout().lock(), args.to, &r);
                });
            }
            results.push(r);
            bar.inc(1);
            continue;
        }
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
            let plan = crate::replay::plan(templates, instruments, rec, opts, SystemClock.now());
            let changed = plan.changed();
            planned(&mut result, PlanView::from_plan(&plan), changed);
        }
        Runner::Remote(remote) => {
            if to == Target::DryRun && s.from_file {
                let plan =
                    crate::replay::plan(templates, instruments, rec, opts, SystemClock.now());
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
                Err(e) => {
                    if e.contains(" is stale: ") {
                        result.outcome = "stale".into();
                    }
                    result.reason = Some(e)
                }
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
                Err(e) => {
                    if let RelayError::Stale { .. } = e {
                        result.outcome = "stale".into();
                    }
                    result.reason = Some(e.to_string())
                }
            }
        }
    }
    result
}

/// The first line of an `alerts export` file: the format and its version.
pub const EXPORT_VERSION: u64 = 1;

/// The header line `alerts export` writes first.
pub fn export_header() -> String {
    serde_json::json!({"alertRelayExport": EXPORT_VERSION}).to_string()
}

/// The version a header line names, if `line` is one. Files written before the header existed have none
/// and are read as version 1.
fn export_version(line: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("alertRelayExport")?.as_u64()
}

/// For each selected record (chronological), the newer selected record that replaces it: within one run
/// only the newest alert of each lane runs, as live alerts supersede waiting ones. A record is superseded
/// when every lane it would trade has a newer selected record.
fn superseded_within(selected: &[Selected], opts: &ReplayOptions) -> Vec<Option<String>> {
    let lanes = |s: &Selected| -> Vec<(String, String)> {
        s.rec
            .executions
            .iter()
            .map(|e| {
                let mut r = e.request.clone();
                if let Some(a) = &opts.account {
                    r.set_account(a.clone());
                }
                r.lane()
            })
            .collect()
    };
    let mut newest: std::collections::HashMap<(String, String), String> = Default::default();
    for s in selected {
        for lane in lanes(s) {
            newest.insert(lane, s.rec.id.clone());
        }
    }
    selected
        .iter()
        .map(|s| {
            let l = lanes(s);
            if l.is_empty() {
                return None;
            }
            let by: Vec<&String> = l.iter().filter_map(|lane| newest.get(lane)).collect();
            let all_newer = by.len() == l.len() && by.iter().all(|id| **id != s.rec.id);
            all_newer.then(|| by[0].clone())
        })
        .collect()
}

fn superseded_result(s: &Selected, opts: &ReplayOptions, by: &str) -> ReplayResult {
    ReplayResult {
        id: s.rec.id.clone(),
        received_at: s.rec.received_at.clone(),
        source: s.rec.source.clone(),
        plan: PlanView {
            template: opts.template.clone().or_else(|| s.rec.template.clone()),
            original: s.rec.executions.iter().map(|e| e.request.clone()).collect(),
            ..PlanView::default()
        },
        changed: false,
        outcome: "superseded".into(),
        new_id: None,
        reason: Some(format!(
            "the newer selected alert {by} replaces it on its lane (--every runs them all)"
        )),
    }
}
