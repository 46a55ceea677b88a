//! Execution: runs one journaled CancelAndBracket request on its account's executor, under the outbound
//! limit, recording every step durably. The sequencer decides *when*; this decides *how*.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::domain::BracketRequest;
use crate::executor::{ExecError, Executor};
use crate::journal::{now_ms, Journal};
use crate::limits::OutboundLimit;
use crate::metrics::Metrics;
use crate::record::{AlertRecord, Execution, Status};
use crate::sequencer::{LaneKey, Sequenced, Worker};

/// One request of one alert, waiting for its turn in its lane.
pub struct ExecJob {
    pub alert_id: String,
    pub index: usize,
    pub request: BracketRequest,
    /// Synchronous API calls are not superseded: their caller waits for this very call.
    pub supersedable: bool,
    /// Receives the execution's final state (synchronous API calls).
    pub reply: Option<oneshot::Sender<Execution>>,
    /// When the alert was received (for end-to-end latency).
    pub received: Instant,
}

impl Sequenced for ExecJob {
    fn lane(&self) -> LaneKey {
        self.request.lane()
    }
    fn order_key(&self) -> &str {
        &self.alert_id
    }
    fn supersedable(&self) -> bool {
        self.supersedable
    }
}

/// Callers waiting for an alert to reach a final status (`Prefer: wait=N`).
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<String, Vec<oneshot::Sender<AlertRecord>>>>,
}

impl Waiters {
    pub fn register(&self, alert_id: &str) -> oneshot::Receiver<AlertRecord> {
        let (tx, rx) = oneshot::channel();
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(alert_id.to_string())
            .or_default()
            .push(tx);
        rx
    }

    pub fn notify(&self, rec: &AlertRecord) {
        if !rec.is_final() {
            return;
        }
        let waiting = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&rec.id);
        for tx in waiting.into_iter().flatten() {
            let _ = tx.send(rec.clone());
        }
    }
}

pub struct Engine {
    pub journal: Arc<Journal>,
    pub executors: HashMap<String, Arc<dyn Executor>>,
    pub outbound: OutboundLimit,
    pub waiters: Waiters,
    pub metrics: Arc<Metrics>,
}

impl Engine {
    /// Applies `f` to execution `index` of alert `id`, makes it durable, wakes whoever waits, and returns
    /// the execution as stored.
    async fn record(
        &self,
        id: &str,
        index: usize,
        f: impl Fn(&mut Execution),
    ) -> Option<Execution> {
        let updated = match self.journal.update(id, |rec| {
            if let Some(e) = rec.executions.get_mut(index) {
                f(e);
            }
            if rec.status.is_terminal() || rec.executions.iter().all(|e| e.status.is_terminal()) {
                rec.timings.completed_at_ms.get_or_insert_with(now_ms);
            }
        }) {
            Ok(Some(rec)) => rec,
            Ok(None) => {
                tracing::error!(
                    alert_id = id,
                    "execution for a record that is not in the journal"
                );
                return None;
            }
            Err(e) => {
                tracing::error!(alert_id = id, error = %e, "cannot record execution state");
                return None;
            }
        };
        if let Err(e) = self.journal.sync().await {
            tracing::error!(alert_id = id, error = %e, "cannot make execution state durable");
        }
        if updated.is_final() {
            self.metrics.alert_final(&updated);
        }
        self.waiters.notify(&updated);
        updated.executions.get(index).cloned()
    }

    fn finish(job: ExecJob, exec: Option<Execution>) {
        if let (Some(tx), Some(exec)) = (job.reply, exec) {
            let _ = tx.send(exec);
        }
    }
}

#[async_trait]
impl Worker<ExecJob> for Engine {
    async fn run(&self, job: ExecJob) {
        let id = job.alert_id.clone();
        let index = job.index;
        let Some(executor) = self.executors.get(&job.request.account).cloned() else {
            let account = job.request.account.clone();
            let exec = self
                .record(&id, index, |e| {
                    e.status = Status::Failed;
                    e.error = Some(format!("no executor configured for account '{account}'"));
                })
                .await;
            return Self::finish(job, exec);
        };

        let waited = self.outbound.acquire().await;
        let waited_us = match waited {
            Ok(w) | Err(w) => w.as_micros() as u64,
        };
        self.metrics.limiter_wait(waited_us);
        if waited.is_err() {
            let (ps, burst, max) = (
                self.outbound.per_second,
                self.outbound.burst,
                self.outbound.max_wait(),
            );
            tracing::warn!(alert_id = %id, "execution rejected: outbound rate limit");
            let exec = self
                .record(&id, index, |e| {
                    e.status = Status::Rejected;
                    e.limiter_wait_us = Some(waited_us);
                    e.error = Some(format!(
                        "rate limited: waited {:.1}s for the outbound execution budget ({ps}/s, burst {burst}); raise limits.outbound or send fewer alerts",
                        max.as_secs_f64()
                    ));
                })
                .await;
            return Self::finish(job, exec);
        }

        // Durable *before* sending: after a crash, `executing` means "may have reached the broker".
        let name = executor.name().to_string();
        self.record(&id, index, |e| {
            e.status = Status::Executing;
            e.executor = Some(name.clone());
            e.started_at_ms = Some(now_ms());
            e.limiter_wait_us = Some(waited_us);
        })
        .await;
        tracing::info!(alert_id = %id, account = %job.request.account, instrument = %job.request.instrument, executor = %name, "executing CancelAndBracket");
        let result = executor.cancel_and_bracket(&job.request).await;
        let exec = self
            .record(&id, index, |e| {
                e.finished_at_ms = Some(now_ms());
                match &result {
                    Ok(outcome) => {
                        e.status = Status::Executed;
                        e.outcome = Some(outcome.clone());
                        e.error = None;
                    }
                    Err(ExecError::Unknown(msg)) => {
                        e.status = Status::Unknown;
                        e.error = Some(format!("outcome unknown: {msg}"));
                    }
                    Err(err) => {
                        e.status = Status::Failed;
                        e.error = Some(err.to_string());
                    }
                }
            })
            .await;
        match &result {
            Ok(_) => tracing::info!(alert_id = %id, "executed"),
            Err(e) => tracing::warn!(alert_id = %id, error = %e, "execution did not succeed"),
        }
        self.metrics.execution_done(job.received.elapsed());
        Self::finish(job, exec);
    }

    async fn superseded(&self, job: ExecJob, by: String) {
        tracing::info!(alert_id = %job.alert_id, superseded_by = %by, "superseded before it ran");
        let exec = self
            .record(&job.alert_id, job.index, |e| {
                e.status = Status::Superseded;
                e.superseded_by = Some(by.clone());
            })
            .await;
        Self::finish(job, exec);
    }
}
