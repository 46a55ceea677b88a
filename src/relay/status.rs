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

    pub fn metrics_text(&self) -> String {
        let mut extra = String::new();
        extra.push_str("# HELP alert_relay_queue_depth Executions waiting per lane.\n# TYPE alert_relay_queue_depth gauge\n");
        for ((account, instrument), n) in self.sequencer.depths() {
            extra.push_str(&format!(
                "alert_relay_queue_depth{{account=\"{account}\",instrument=\"{instrument}\"}} {n}\n"
            ));
        }
        extra.push_str(&format!(
            "# HELP alert_relay_journal_records Records in the journal.\n# TYPE alert_relay_journal_records gauge\nalert_relay_journal_records {}\n",
            self.journal.record_count()
        ));
        extra.push_str(&format!(
            "# HELP alert_relay_journal_bytes Journal size on disk.\n# TYPE alert_relay_journal_bytes gauge\nalert_relay_journal_bytes {}\n",
            self.journal.size_on_disk()
        ));
        self.metrics.render(&extra)
    }
}
