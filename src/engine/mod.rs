//! Execution: runs one alert's journaled commands for one lane on the account's executor — the position
//! read and gate, then each command in order — under the outbound limit, recording every step durably. The
//! sequencer decides *when*; this decides *how*.
//!
//! - `mod.rs`: the job and its steps, who waits for an alert, and recording an execution durably;
//! - `step.rs`: running a job: the position read, the gate, the attempts at the broker, what ends a sequence;
//! - `ending.rs`: how an execution's loop ended and the status that follows (`unknown` once maybe sent).

mod ending;
mod step;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::clock::now_ms;
use crate::command::Command;
use crate::executor::Executor;
use crate::journal::{Journal, KnownState};
use crate::limits::OutboundLimit;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::record::{AlertRecord, Execution, Status};
use crate::sequencer::{LaneKey, Sequenced};
use crate::settle::Settler;

/// One request of one alert, waiting for its turn in its lane.
pub struct ExecJob {
    pub alert_id: String,
    /// The alert's source (for metrics).
    pub source: String,
    /// When the alert was received (wall clock): the age limit counts from here.
    pub received_at_ms: u64,
    /// The alert's executions in this lane, in order: one command, or a sequence (close, enter, bracket)
    /// that stops at the first step that does not succeed.
    pub steps: Vec<Step>,
    /// Synchronous API calls are not superseded: their caller waits for this very call.
    pub supersedable: bool,
    /// Receives the execution's final state (synchronous API calls).
    pub reply: Option<oneshot::Sender<Execution>>,
    /// When the alert was received (for end-to-end latency).
    pub received: Instant,
    /// Receipt → durable acknowledgement, stored with the first execution write.
    pub ack_us: Option<u64>,
    /// The record's state as this execution last wrote it (at first: as admitted), so each write is one
    /// compare-and-swap instead of a read and a write (`Journal::update_known`).
    pub known: Mutex<Option<KnownState>>,
}

/// One execution of a job.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its index in the alert's executions.
    pub index: usize,
    pub request: Command,
    /// Its status when the job was queued: `accepted`, or final (a sequence resumed after a restart).
    pub status: Status,
}

impl Sequenced for ExecJob {
    fn lane(&self) -> LaneKey {
        self.steps
            .first()
            .map(|s| s.request.lane())
            .unwrap_or_default()
    }
    fn order_key(&self) -> &str {
        &self.alert_id
    }
    fn supersedable(&self) -> bool {
        self.supersedable && self.steps.iter().all(|s| s.request.supersedable())
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

    /// Is anyone waiting for alert `alert_id`?
    pub fn has(&self, alert_id: &str) -> bool {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(alert_id)
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

/// How long and how often to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_age: Duration,
    pub backoff: Duration,
    pub backoff_max: Duration,
}

pub struct Engine {
    pub journal: Arc<Journal>,
    pub policy: RetryPolicy,
    /// While on, nothing executes: waiting executions are rejected with reason [`KILL_SWITCH_REASON`].
    pub kill_switch: Arc<AtomicBool>,
    /// Settles executions that end `unknown` by asking the broker (and lists them meanwhile).
    pub settler: Arc<Settler>,
    pub executors: HashMap<String, Arc<dyn Executor>>,
    pub outbound: Arc<OutboundLimit>,
    pub waiters: Waiters,
    pub metrics: Arc<Metrics>,
    /// Told about failed and unknown outcomes, and about the broker's refused token / missing add-on.
    pub notifier: Arc<Notifier>,
}

/// How soon an execution write must reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// On disk before the engine goes on (and before anyone is told).
    Wait,
    /// On disk within [`SOON`], without holding the lane: for a final state nobody is waiting for. Under
    /// load it shares the next acknowledgement's flush instead of paying one of its own.
    Soon,
    /// Not asked for: a later write of the same lane, or start-up recovery, covers it.
    Later,
}

/// The longest a final state nobody waits for stays in memory only. A crash inside it leaves a CrossTrade
/// execution `unknown` (checked by hand, never re-sent); on paper, whose orders share the journal's log, it
/// may instead roll the orders back with it, and the alert runs once more at start-up.
const SOON: Duration = Duration::from_millis(5);

impl Engine {
    /// Applies `f` to the job's execution, makes it durable, wakes whoever waits, and returns the execution
    /// as stored.
    async fn record(
        &self,
        job: &ExecJob,
        index: usize,
        f: impl Fn(&mut Execution),
    ) -> Option<Execution> {
        self.record_with(job, index, Durability::Wait, f).await
    }

    /// Like `record`, with the given durability. Whichever write comes first also stores the alert's
    /// acknowledgement time (no extra write on the hot path).
    async fn record_with(
        &self,
        job: &ExecJob,
        index: usize,
        durability: Durability,
        f: impl Fn(&mut Execution),
    ) -> Option<Execution> {
        let (id, ack_us) = (job.alert_id.as_str(), job.ack_us);
        // The guard ends with this block, before any await.
        let written = {
            let mut known = job.known.lock().unwrap_or_else(|p| p.into_inner());
            self.journal.update_known(id, &mut known, |st| {
                if let Some(e) = st.executions.get_mut(index) {
                    f(e);
                }
                if let Some(us) = ack_us {
                    st.timings.ack_us.get_or_insert(us);
                }
                if st.status.is_terminal() || st.executions.iter().all(|e| e.status.is_terminal()) {
                    st.timings.completed_at_ms.get_or_insert_with(now_ms);
                }
            })
        };
        let updated = match written {
            Ok(Some(st)) => st,
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
        match durability {
            Durability::Wait => {
                if let Err(e) = self.journal.sync().await {
                    tracing::error!(alert_id = id, error = %e, "cannot make execution state durable");
                }
            }
            Durability::Soon => self.journal.flush_within(SOON),
            Durability::Later => {}
        }
        if updated.is_final() {
            self.metrics
                .alert_status(&job.source, updated.status.as_str());
            // Whoever waits gets the whole record (read back only then).
            if self.waiters.has(id) {
                match self.journal.get(id) {
                    Ok(Some(rec)) => self.waiters.notify(&rec),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(alert_id = id, error = %e, "cannot read back a finished alert")
                    }
                }
            }
        }
        updated.executions.get(index).cloned()
    }

    fn finish(job: ExecJob, exec: Option<Execution>) {
        if let (Some(tx), Some(exec)) = (job.reply, exec) {
            let _ = tx.send(exec);
        }
    }
}
