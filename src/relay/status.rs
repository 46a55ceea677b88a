//! What the relay says about itself: `/healthz`, `/readyz` and `/metrics`.

use super::*;

/// More refusals than this from one configured source within the window is a health problem.
use crate::refusals::{BURST_OVER as REFUSAL_BURST, BURST_WINDOW as REFUSAL_WINDOW};

/// What `/healthz` answers.
pub struct Health {
    pub degraded: bool,
    /// Answer with 503 (`server.health_status_code = "503-when-degraded"`), for monitors that read only the
    /// status code.
    pub unavailable: bool,
    pub body: Value,
}

impl Relay {
    /// `/healthz`: ok, or degraded with the reasons (unknown outcomes, kill switch, an executor that is not
    /// usable: a refused token, CrossTrade unreachable).
    pub async fn health(&self) -> Health {
        let mut problems = Vec::new();
        let unknown = self.unknown().list();
        if !unknown.is_empty() {
            problems.push(format!(
                "{} execution(s) with unknown outcome, not settled yet: the bracket may be live; the relay asks the broker, else check the account and run alert-relay alerts resolve ID --as executed|failed (GET /api/alerts?status=unknown lists them)",
                unknown.len()
            ));
        }
        if self.kill_switch_on() {
            problems.push("kill switch is on: nothing executes".into());
        }
        // A broken TradingView message refuses every alert: noticed before the next trade, not after.
        let since = now_ms().saturating_sub(REFUSAL_WINDOW.as_millis() as u64);
        for (source, n, last) in self.refusals.bursts(since, REFUSAL_BURST) {
            if self.sources.contains_key(&source) {
                problems.push(format!(
                    "source '{source}': {n} webhooks refused in the last 5 minutes (last: {last}); see GET /api/refusals"
                ));
            }
        }
        problems.extend(self.executor_problems().await);
        problems.extend(self.old_month_problems());
        let degraded = !problems.is_empty();
        Health {
            degraded,
            unavailable: degraded
                && self.health_status == HealthStatusCode::ServiceUnavailableWhenDegraded,
            body: json!({
                "status": if degraded { "degraded" } else { "ok" },
                "problems": problems,
                "unknown": unknown,
                "records": self.journal.record_count(),
                "killSwitch": self.kill_switch_on(),
            }),
        }
    }

    /// What each distinct executor says about itself.
    pub(super) async fn executor_problems(&self) -> Vec<String> {
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

    /// `/metrics`: the counters, with the gauges read now.
    pub fn metrics_text(&self) -> String {
        self.metrics.render(crate::metrics::Snapshot {
            queue_depths: self.sequencer.depths(),
            journal_records: self.journal.record_count() as u64,
            journal_bytes: self.journal.size_on_disk(),
            unknown_unsettled: self.unknown().len(),
            kill_switch: self.kill_switch_on(),
        })
    }
}
