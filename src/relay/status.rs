//! What the relay says about itself: `/healthz`, `/readyz` and `/metrics`.

use super::*;

impl Relay {
    /// `/healthz`: ok, or degraded with the reasons (unknown outcomes, kill switch, an executor that is not
    /// usable: a refused token, CrossTrade unreachable).
    pub async fn health(&self) -> Value {
        let mut problems = Vec::new();
        let unknown = self.unknown.load(Ordering::SeqCst);
        if unknown > 0 {
            problems.push(format!(
                "{unknown} execution(s) with unknown outcome: check the account and see GET /api/alerts?status=unknown"
            ));
        }
        if self.kill_switch_on() {
            problems.push("kill switch is on: nothing executes".into());
        }
        problems.extend(self.executor_problems().await);
        json!({
            "status": if problems.is_empty() { "ok" } else { "degraded" },
            "problems": problems,
            "records": self.journal.record_count(),
            "killSwitch": self.kill_switch_on(),
        })
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
        })
    }
}
