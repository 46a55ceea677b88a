//! Replaying stored alerts: render a record's stored body again through the current templates (a *plan*,
//! side-effect free, for dry runs), and execute that plan as a new record that points to the original
//! (`replayOf`). The original's idempotency key does not block a replay, and a replay of a replay is
//! traceable through the chain of `replayOf`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::command::Command;
use crate::error::RelayError;
use crate::instruments::Instruments;
use crate::journal::ListFilter;
use crate::record::{AlertRecord, Execution, Status};
use crate::relay::admission::{Admitted, Queueing};
use crate::relay::{Relay, API_SOURCE};
use crate::template::{Rendered, Templates};

/// Where a replay executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayTarget {
    /// Print only.
    DryRun,
    /// Execute on the embedded paper account, whatever the original account's executor.
    Paper,
    /// Execute on the accounts as configured (live accounts trade for real).
    Live,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReplayOptions {
    /// Another template to try instead of the one the record used.
    pub template: Option<String>,
    /// Send every request to this account instead.
    pub account: Option<String>,
    /// Replay even when the lane has executed a newer alert (the replay would move it backwards).
    pub force: bool,
    /// Resolve continuous symbols (`ES1!`) at the time of the replay instead of the original alert's.
    pub re_resolve: bool,
}

/// What a record renders to now.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub original_id: String,
    pub template: Option<String>,
    /// The requests the original produced (from its executions).
    pub original: Vec<Command>,
    /// The requests it produces now; empty when skipped or failed.
    pub now: Vec<Command>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A newer alert that executed on one of the lanes: replaying this one would put an older bracket
    /// over it (refused unless `force`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
}

impl Plan {
    /// Did the request change (ignoring the generated OCO id)?
    pub fn changed(&self) -> bool {
        let strip = |v: &[Command]| {
            v.iter()
                .map(Command::without_generated_ids)
                .collect::<Vec<_>>()
        };
        strip(&self.original) != strip(&self.now)
    }
}

/// Renders `rec` again. `paper_accounts` and `to` decide where a replay to paper lands.
///
/// Contract months resolve as they did for the original alert (its `contractsAtMs`, else its receipt)
/// unless `opts.re_resolve`, which resolves them at `now`.
pub fn plan(
    templates: &Templates,
    instruments: &Instruments,
    rec: &AlertRecord,
    opts: &ReplayOptions,
    now: Timestamp,
) -> Plan {
    let at = contracts_at(rec, opts, now);
    let original: Vec<Command> = rec.executions.iter().map(|e| e.request.clone()).collect();
    let template = opts.template.clone().or_else(|| rec.template.clone());
    let mut p = Plan {
        original_id: rec.id.clone(),
        template: template.clone(),
        original,
        now: Vec::new(),
        skipped: None,
        error: None,
        stale: None,
    };
    let fields: Map<String, Value> = match &rec.body {
        Value::Object(m) => m.clone(),
        other => {
            let mut m = Map::new();
            m.insert("text".into(), other.clone());
            m
        }
    };
    let rendered = match &template {
        Some(t) => templates
            .render_at(t, &fields, &rec.source, at)
            .map_err(|e| e.to_string()),
        None if rec.source == API_SOURCE => {
            crate::domain::BracketRequest::from_rendered(&fields, instruments, at)
                .map(|r| Rendered::Requests {
                    key: None,
                    requests: vec![Command::CancelAndBracket(r)],
                })
                .map_err(|e| e.to_string())
        }
        None => Err("the record names no template; pass one".to_string()),
    };
    match rendered {
        Ok(Rendered::Skipped { reason, .. }) => p.skipped = Some(reason),
        Ok(Rendered::Requests { requests, .. }) => {
            p.now = requests
                .into_iter()
                .map(|mut r| {
                    if let Some(a) = &opts.account {
                        r.set_account(a.clone());
                    }
                    r
                })
                .collect()
        }
        Err(e) => p.error = Some(e),
    }
    p
}

/// The time a replay of `rec` resolves contract months at.
pub fn contracts_at(rec: &AlertRecord, opts: &ReplayOptions, now: Timestamp) -> Timestamp {
    if opts.re_resolve {
        now
    } else {
        Timestamp(rec.contracts_at_ms.unwrap_or(rec.received_at_ms))
    }
}

impl Relay {
    /// The newest record, other than `original` and its own replays, that executed (or may have: executing,
    /// unknown) on one of `requests`' lanes and stands for a newer alert than `original` (a replay stands
    /// for the alert it replays).
    async fn newer_on_lanes(
        &self,
        original: &AlertRecord,
        requests: &[Command],
    ) -> Result<Option<String>, RelayError> {
        let lanes: Vec<(String, String)> = requests.iter().map(Command::lane).collect();
        if lanes.is_empty() {
            return Ok(None);
        }
        let filter = ListFilter {
            since_ms: Some(original.received_at_ms),
            limit: usize::MAX,
            ..ListFilter::default()
        };
        let journal = self.journal.clone();
        let recs = tokio::task::spawn_blocking(move || journal.list(&filter))
            .await
            .map_err(|e| RelayError::Internal(format!("listing failed: {e}")))??;
        Ok(recs
            .into_iter()
            .find(|r| {
                let stands_for = r.replay_of.as_deref().unwrap_or(&r.id);
                stands_for > original.id.as_str()
                    && r.executions.iter().any(|e| {
                        matches!(
                            e.status,
                            Status::Executed | Status::Executing | Status::Unknown
                        ) && lanes.contains(&e.request.lane())
                    })
            })
            .map(|r| r.id))
    }

    /// Replays record `id`: a new record with `replayOf` = `id`, executed to `to`, waited for up to `wait`.
    pub async fn replay(
        self: &Arc<Self>,
        id: &str,
        to: ReplayTarget,
        opts: &ReplayOptions,
        wait: Duration,
    ) -> Result<(AlertRecord, Plan), RelayError> {
        let original = self.get_alert(id)?;
        let now = self.contracts_now();
        let mut plan = plan(&self.templates, &self.instruments, &original, opts, now);
        if to == ReplayTarget::DryRun {
            plan.stale = self.newer_on_lanes(&original, &plan.now).await?;
            let rec = original.clone();
            return Ok((rec, plan));
        }
        if let Some(e) = &plan.error {
            return Err(RelayError::NotReplayable(format!(
                "alert {id} cannot be replayed: {e}"
            )));
        }
        if to == ReplayTarget::Paper {
            let default_paper = self.paper.accounts().first().cloned().unwrap_or_default();
            for r in &mut plan.now {
                if !self.paper.has_account(r.account()) {
                    r.set_account(default_paper.clone());
                }
            }
        }
        if let Some(bad) = plan.now.iter().find(|r| !self.has_executor(r.account())) {
            return Err(RelayError::NotReplayable(format!(
                "account '{}' is not configured",
                bad.account()
            )));
        }
        if !opts.force {
            if let Some(newer) = self.newer_on_lanes(&original, &plan.now).await? {
                return Err(RelayError::Stale {
                    message: format!(
                        "alert {id} is stale: its lane has a newer alert {newer} that executed, and replaying it would put an older bracket over that one; pass force to replay anyway"
                    ),
                    newer_alert_id: newer,
                });
            }
        }
        let received = Instant::now();
        let mut rec = AlertRecord::received(
            self.journal.next_id(),
            &original.source,
            original.body.clone(),
            original.format.clone(),
        );
        rec.template = plan.template.clone();
        let at = contracts_at(&original, opts, now);
        rec.contracts_at_ms = Some(at.as_ms());
        rec.executions = plan
            .now
            .iter()
            .cloned()
            .map(|r| Execution::new(r).with_contract(&self.instruments, at))
            .collect();
        rec.replay_of = Some(original.id.clone());
        if let Some(reason) = &plan.skipped {
            rec.status = Status::Skipped;
            rec.reason = Some(reason.clone());
        }
        // In a task of its own, like a webhook: a caller that hangs up cannot strand the new record.
        self.detached(|me| async move {
            let queueing = Queueing {
                received,
                supersedable: false,
                inbound: None,
                wait_record: true,
                reply: None,
            };
            let (rec, done) = match me.admit_and_queue(rec, queueing).await? {
                Admitted::New { rec, done } => (rec, done),
                Admitted::Existing(_) => {
                    return Err(RelayError::Internal("replay record collided".into()))
                }
            };
            // The original links its replays, so "never re-driven" can be selected later.
            let replay_id = rec.id.clone();
            me.journal.update(&original.id, |st| {
                if !st.replayed_by.contains(&replay_id) {
                    st.replayed_by.push(replay_id.clone());
                }
            })?;
            me.journal.sync().await?;
            let Some(rx) = done else {
                return Ok((rec, plan));
            };
            let done = match tokio::time::timeout(wait, rx).await {
                Ok(Ok(done)) => done,
                _ => me.get_alert(&rec.id)?,
            };
            Ok((done, plan))
        })
        .await
    }
}
