//! Execution: runs one alert's journaled commands for one lane on the account's executor — the position
//! read and gate, then each command in order — under the outbound limit, recording every step durably. The sequencer decides *when*; this decides *how*.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::clock::now_ms;
use crate::command::Command;
use crate::domain::{describe_position, BracketOutcome, OcoId, OrderId};
use crate::error::KILL_SWITCH_REASON;
use crate::executor::{execute, BrokerPosition, ExecError, Executor};
use crate::journal::{Journal, KnownState};
use crate::limits::OutboundLimit;
use crate::metrics::Metrics;
use crate::notify::{Event, Notifier};
use crate::record::{AlertRecord, Attempt, Execution, Status};
use crate::sequencer::{LaneKey, Sequenced, Worker};
use crate::settle::{Settler, Unsettled};

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

/// How the execution loop ended.
enum End {
    /// The broker answered the last attempt (or it failed in a way that ends the retries).
    Answered(Result<BracketOutcome, ExecError>, Attempt),
    /// The engine stopped before making another attempt.
    Halted(Halt),
}

/// Why the engine made no (further) attempt.
enum Halt {
    KillSwitch,
    /// The outbound budget had no room within `max_wait`; the message says so in words.
    RateLimited(String),
}

impl Halt {
    fn reason(&self) -> &str {
        match self {
            Halt::KillSwitch => KILL_SWITCH_REASON,
            Halt::RateLimited(msg) => msg,
        }
    }
}

/// The final state of one execution, as recorded.
struct Settled {
    status: Status,
    /// The outcome, or the error text for the record.
    result: Result<BracketOutcome, String>,
    /// The attempt that ended the loop, recorded with the final state in one write.
    last_attempt: Option<Attempt>,
    unauthorized: bool,
}

impl End {
    /// Decides the final status. Once any attempt may have reached the broker (`maybe_sent`), nothing that
    /// happens afterwards — a failed retry, the kill switch, an exhausted outbound budget — can make the
    /// outcome known: the bracket may be live, so the execution ends `unknown`, never `rejected` or `failed`.
    fn settle(self, maybe_sent: bool, max_age: Duration) -> Settled {
        let unknown = |why: String| {
            format!(
                "outcome unknown: {why}; not retried past the {}s age limit: check the account",
                max_age.as_secs()
            )
        };
        match self {
            End::Answered(Ok(outcome), attempt) => Settled {
                status: Status::Executed,
                result: Ok(outcome),
                last_attempt: Some(attempt),
                unauthorized: false,
            },
            End::Answered(Err(ExecError::Unknown(msg)), attempt) => Settled {
                status: Status::Unknown,
                result: Err(unknown(msg)),
                last_attempt: Some(attempt),
                unauthorized: false,
            },
            End::Answered(Err(e), attempt) if maybe_sent => Settled {
                status: Status::Unknown,
                result: Err(unknown(format!(
                    "an earlier attempt may have reached the broker; the last one: {e}"
                ))),
                last_attempt: Some(attempt),
                unauthorized: matches!(e, ExecError::Unauthorized(_)),
            },
            End::Answered(Err(e), attempt) => Settled {
                status: Status::Failed,
                unauthorized: matches!(e, ExecError::Unauthorized(_)),
                result: Err(e.to_string()),
                last_attempt: Some(attempt),
            },
            End::Halted(halt) if maybe_sent => Settled {
                status: Status::Unknown,
                result: Err(format!(
                    "outcome unknown: an earlier attempt may have reached the broker, and no retry was made ({}): check the account",
                    halt.reason()
                )),
                last_attempt: None,
                unauthorized: false,
            },
            End::Halted(halt) => Settled {
                status: Status::Rejected,
                result: Err(halt.reason().to_string()),
                last_attempt: None,
                unauthorized: false,
            },
        }
    }
}

/// A wait in words: milliseconds below a second (so 10 ms is never "0.0s"), else seconds.
fn fmt_wait(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// How a step of a job ended, for the steps after it.
enum StepEnd {
    /// Executed, or skipped by its gate: the next step may run.
    Continue,
    /// Failed, unknown, rejected...: the steps after it do not run; the words say why.
    Stop(String),
}

impl StepEnd {
    fn of(index: usize, cmd: &Command, status: Status) -> StepEnd {
        match status {
            Status::Executed | Status::Skipped => StepEnd::Continue,
            other => StepEnd::Stop(format!(
                "not run: step {} ({}) ended {}",
                index + 1,
                cmd.name(),
                other.as_str()
            )),
        }
    }
}

/// What reading the account's position came to.
enum Read {
    Held(i64),
    /// No answer worth acting on: the step ends with this status and reason, nothing sent.
    Refused(Status, String),
}

#[async_trait]
impl Worker<ExecJob> for Engine {
    async fn run(&self, job: ExecJob) {
        // The position as read once for this job (one alert, one lane), then as the steps left it.
        let mut held: Option<i64> = None;
        let mut stop: Option<String> = None;
        let mut last = None;
        for step in &job.steps {
            if step.status != Status::Accepted {
                // Already finished before a restart: it still decides whether the next ones run.
                if let StepEnd::Stop(why) = StepEnd::of(step.index, &step.request, step.status) {
                    stop.get_or_insert(why);
                }
                continue;
            }
            if let Some(why) = &stop {
                let why = why.clone();
                last = self
                    .record_with(&job, step.index, self.final_durability(&job), |e| {
                        e.status = Status::Skipped;
                        e.error = Some(why.clone());
                    })
                    .await;
                tracing::warn!(alert_id = %job.alert_id, step = step.index + 1, command = step.request.name(), reason = %why, "step not run");
                continue;
            }
            let exec = self.run_step(&job, step, &mut held).await;
            if let Some(e) = &exec {
                if let StepEnd::Stop(why) = StepEnd::of(step.index, &e.request, e.status) {
                    stop = Some(why);
                }
            }
            last = exec;
        }
        self.metrics.execution_done(job.received.elapsed());
        Self::finish(job, last);
    }

    async fn superseded(&self, job: ExecJob, by: String) {
        tracing::info!(alert_id = %job.alert_id, superseded_by = %by, "superseded before it ran");
        // Not waited to disk: the newer alert's own writes follow this one in the log, and if a crash loses
        // it, start-up recovery supersedes the older alert again (its lane saw a newer one start).
        let mut last = None;
        for step in job.steps.iter().filter(|s| s.status == Status::Accepted) {
            last = self
                .record_with(&job, step.index, Durability::Later, |e| {
                    e.status = Status::Superseded;
                    e.superseded_by = Some(by.clone());
                })
                .await;
        }
        Self::finish(job, last);
    }
}

impl Engine {
    /// A final state is on disk before anyone waiting hears it; otherwise it follows within [`SOON`].
    fn final_durability(&self, job: &ExecJob) -> Durability {
        if job.reply.is_some() || self.waiters.has(&job.alert_id) {
            Durability::Wait
        } else {
            Durability::Soon
        }
    }

    /// Reads the account's position in the step's instrument, with the send's rules: the outbound budget,
    /// the kill switch, retries within the age limit. Never `Held` without an answer from the broker.
    async fn read_position(
        &self,
        job: &ExecJob,
        executor: &Arc<dyn Executor>,
        cmd: &Command,
        total_wait_us: &mut u64,
    ) -> Read {
        let deadline_ms = job.received_at_ms + self.policy.max_age.as_millis() as u64;
        let mut backoff = self.policy.backoff;
        let (account, instrument) = (cmd.account(), cmd.instrument());
        loop {
            if self.kill_switch.load(Ordering::SeqCst) {
                return Read::Refused(Status::Rejected, KILL_SWITCH_REASON.to_string());
            }
            let waited = self.outbound.acquire().await;
            let waited_us = match waited {
                Ok(w) | Err(w) => w.as_micros() as u64,
            };
            *total_wait_us += waited_us;
            self.metrics.limiter_wait(waited_us);
            if waited.is_err() {
                return Read::Refused(
                    Status::Rejected,
                    format!(
                        "rate limited: waited {} for the outbound budget to read the position of {account}; nothing was sent",
                        fmt_wait(self.outbound.max_wait())
                    ),
                );
            }
            let e = match executor.positions(account).await {
                Ok(positions) => return Read::Held(BrokerPosition::held(&positions, instrument)),
                Err(e) => e,
            };
            let retry_in = match &e {
                ExecError::Throttled {
                    retry_after: Some(after),
                } => Some(*after),
                e if e.retryable() => Some(backoff),
                _ => None,
            }
            .filter(|d| now_ms() + d.as_millis() as u64 <= deadline_ms);
            match retry_in {
                Some(delay) => {
                    tracing::warn!(alert_id = %job.alert_id, %account, error = %e, retry_in_ms = delay.as_millis() as u64, "position read did not succeed; retrying");
                    tokio::time::sleep(delay).await;
                    backoff = (backoff * 2).min(self.policy.backoff_max);
                }
                None => {
                    return Read::Refused(
                        Status::Failed,
                        format!(
                            "could not read the position of {account} in {instrument}, so nothing was sent: {e}"
                        ),
                    )
                }
            }
        }
    }

    /// Runs one step: the position read and gate where the command has one, then the broker call with its
    /// retries. Returns the execution as recorded.
    async fn run_step(
        &self,
        job: &ExecJob,
        step: &Step,
        held: &mut Option<i64>,
    ) -> Option<Execution> {
        let id = job.alert_id.clone();
        let index = step.index;
        let Some(executor) = self.executors.get(step.request.account()).cloned() else {
            let account = step.request.account().to_string();
            return self
                .record(job, index, |e| {
                    e.status = Status::Failed;
                    e.error = Some(format!("no executor configured for account '{account}'"));
                })
                .await;
        };
        let mut request = step.request.clone();
        let mut total_wait_us = 0u64;
        // The market the alert saw comes first (paper: resting orders it crosses fill), so the position
        // read and gated on is the one a live broker would report when the alert arrives.
        if let Some(price) = request.relay().alert_price {
            executor.observe_price(request.instrument(), price);
        }
        if request.reads_position() {
            if held.is_none() {
                match self
                    .read_position(job, &executor, &request, &mut total_wait_us)
                    .await
                {
                    Read::Held(q) => *held = Some(q),
                    Read::Refused(status, why) => {
                        tracing::warn!(alert_id = %id, account = %request.account(), instrument = %request.instrument(), reason = %why, "position not read: nothing sent");
                        return self
                            .record_with(job, index, self.final_durability(job), |e| {
                                e.status = status;
                                e.error = Some(why.clone());
                                e.limiter_wait_us = Some(total_wait_us);
                            })
                            .await;
                    }
                }
            }
            let q = held.unwrap_or(0);
            if let Err(why) = request.gate(q) {
                tracing::info!(alert_id = %id, account = %request.account(), instrument = %request.instrument(), command = request.name(), reason = %why, "skipped by its position gate");
                return self
                    .record_with(job, index, self.final_durability(job), |e| {
                        e.status = Status::Skipped;
                        e.error = Some(why.clone());
                        e.position_seen = Some(describe_position(q));
                        e.limiter_wait_us = Some(total_wait_us);
                    })
                    .await;
            }
        }
        // One OCO id (one order id) for every attempt: a retry after an unknown outcome then replaces the
        // same bracket, and settling finds it.
        match &mut request {
            Command::CancelAndBracket(r) if r.oco_id.is_none() => {
                r.oco_id = Some(OcoId::generate())
            }
            Command::PlaceOrder(r) if r.order_id.is_none() => {
                r.order_id = Some(OrderId::generate())
            }
            _ => {}
        }
        let seen = held.map(describe_position);
        let deadline_ms = job.received_at_ms + self.policy.max_age.as_millis() as u64;
        let mut backoff = self.policy.backoff;
        let name = executor.name().to_string();
        // Once any attempt may have reached the broker, a later failure cannot make the outcome known.
        let mut maybe_sent = false;
        let end = loop {
            if self.kill_switch.load(Ordering::SeqCst) {
                break End::Halted(Halt::KillSwitch);
            }
            let waited = self.outbound.acquire().await;
            let waited_us = match waited {
                Ok(w) | Err(w) => w.as_micros() as u64,
            };
            total_wait_us += waited_us;
            self.metrics.limiter_wait(waited_us);
            if waited.is_err() {
                tracing::warn!(alert_id = %id, "outbound rate limit: no further attempt");
                break End::Halted(Halt::RateLimited(format!(
                    "rate limited: waited {} for the outbound execution budget ({}/s, burst {}); raise limits.outbound or send fewer alerts",
                    fmt_wait(self.outbound.max_wait()),
                    self.outbound.per_second,
                    self.outbound.burst,
                )));
            }

            // Durable *before* sending: after a crash, `executing` means "may have reached the broker". A
            // backend in the journal's own log (paper) writes after this mark, so a crash that loses the
            // mark loses the call too: no need to wait for the disk.
            let req = request.clone();
            let mark = if executor.shares_journal_log() {
                Durability::Later
            } else {
                Durability::Wait
            };
            self.record_with(job, index, mark, |e| {
                e.status = Status::Executing;
                e.executor = Some(name.clone());
                e.started_at_ms.get_or_insert_with(now_ms);
                e.limiter_wait_us = Some(total_wait_us);
                e.request = req.clone();
                e.position_seen = seen.clone();
            })
            .await;
            tracing::info!(alert_id = %id, account = %request.account(), instrument = %request.instrument(), executor = %name, command = request.name(), "executing");
            let started = Instant::now();
            let result = execute(executor.as_ref(), &request).await;
            self.notifier.broker_answered(&name, result.as_ref().err());
            let attempt = Attempt {
                at_ms: now_ms(),
                transport: name.clone(),
                status: match &result {
                    Ok(_) => "ok".into(),
                    Err(e) => e.kind().into(),
                },
                error: result.as_ref().err().map(|e| e.to_string()),
                duration_ms: started.elapsed().as_millis() as u64,
            };
            // CancelAndBracket converges (cancel all, place one bracket under the same OCO id), and a
            // placed order carries our order id; a close after an unknown outcome is not repeated blind.
            let may_repeat = match &result {
                Err(ExecError::Unknown(_)) => !matches!(request, Command::ClosePosition(_)),
                _ => true,
            };
            let retry_in = match &result {
                Err(e) if e.retryable() && may_repeat => match e {
                    ExecError::Throttled {
                        retry_after: Some(after),
                    } => Some(*after),
                    _ => Some(backoff),
                },
                _ => None,
            };
            let retry_in = retry_in.filter(|d| now_ms() + d.as_millis() as u64 <= deadline_ms);
            maybe_sent |= matches!(result, Err(ExecError::Unknown(_)));
            match retry_in {
                Some(delay) => {
                    let a = attempt.clone();
                    self.record(job, index, |e| e.attempts.push(a.clone()))
                        .await;
                    if let Err(e) = &result {
                        tracing::warn!(alert_id = %id, error = %e, retry_in_ms = delay.as_millis() as u64, "attempt did not succeed; retrying");
                    }
                    tokio::time::sleep(delay).await;
                    backoff = (backoff * 2).min(self.policy.backoff_max);
                }
                // The last attempt is recorded with the final state, in one write.
                None => break End::Answered(result, attempt),
            }
        };
        let Settled {
            status,
            result,
            last_attempt,
            unauthorized,
        } = end.settle(maybe_sent, self.policy.max_age);
        let exec = self
            .record_with(job, index, self.final_durability(job), |e| {
                if let Some(a) = &last_attempt {
                    e.attempts.push(a.clone());
                }
                if e.started_at_ms.is_some() {
                    e.finished_at_ms = Some(now_ms());
                }
                e.status = status;
                e.limiter_wait_us = Some(total_wait_us);
                match &result {
                    Ok(outcome) => {
                        e.outcome = Some(outcome.clone());
                        e.error = None;
                    }
                    Err(msg) => e.error = Some(msg.clone()),
                }
            })
            .await;
        if status == Status::Executed {
            *held = held.map(|q| request.position_after(q));
        }
        let (account, instrument, command) =
            (request.account(), request.instrument(), request.name());
        match (status, &result) {
            (Status::Executed, _) => {
                tracing::info!(alert_id = %id, %account, %instrument, command, "executed")
            }
            (Status::Unknown, Err(msg)) => {
                tracing::error!(alert_id = %id, %account, %instrument, command, error = %msg, "outcome unknown: asking the broker for its orders");
                self.settler.track(Unsettled {
                    alert_id: id.clone(),
                    execution: index,
                    account: account.to_string(),
                    instrument: instrument.to_string(),
                    oco_id: request.bracket().and_then(|b| b.oco_id.clone()),
                    order_id: match &request {
                        Command::PlaceOrder(o) => o.order_id.clone(),
                        _ => None,
                    },
                    last_attempt_at_ms: now_ms(),
                });
            }
            (Status::Rejected, Err(msg)) => {
                tracing::warn!(alert_id = %id, %account, %instrument, command, reason = %msg, "execution rejected before anything was sent")
            }
            (_, Err(msg)) if unauthorized => {
                tracing::error!(alert_id = %id, %account, %instrument, executor = %name, error = %msg, "the broker refused the token: check the CrossTrade token")
            }
            (_, Err(msg)) => {
                tracing::warn!(alert_id = %id, %account, %instrument, command, error = %msg, "execution did not succeed")
            }
            (_, Ok(_)) => {}
        }
        if let Err(reason) = &result {
            let ended = Event::execution_ended(status, &id, account, instrument, reason);
            ended.into_iter().for_each(|e| self.notifier.notify(e));
        }
        exec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(status: &str) -> Attempt {
        Attempt {
            at_ms: 0,
            transport: "crosstrade-http".into(),
            status: status.into(),
            error: None,
            duration_ms: 0,
        }
    }

    const AGE: Duration = Duration::from_secs(30);

    /// Every way the loop can end, before and after an attempt that may have reached the broker: once one
    /// may have, the execution never ends `rejected` or `failed`.
    #[test]
    fn a_maybe_sent_bracket_always_ends_unknown() {
        let rate = || Halt::RateLimited("rate limited: waited 10 ms".into());
        let cases: Vec<(End, bool, Status)> = vec![
            (End::Halted(Halt::KillSwitch), false, Status::Rejected),
            (End::Halted(Halt::KillSwitch), true, Status::Unknown),
            (End::Halted(rate()), false, Status::Rejected),
            (End::Halted(rate()), true, Status::Unknown),
            (
                End::Answered(
                    Err(ExecError::Transient("refused".into())),
                    attempt("transient"),
                ),
                false,
                Status::Failed,
            ),
            (
                End::Answered(
                    Err(ExecError::Transient("refused".into())),
                    attempt("transient"),
                ),
                true,
                Status::Unknown,
            ),
            (
                End::Answered(Err(ExecError::Rejected("bad".into())), attempt("rejected")),
                true,
                Status::Unknown,
            ),
            (
                End::Answered(
                    Err(ExecError::Unknown("timeout".into())),
                    attempt("unknown"),
                ),
                false,
                Status::Unknown,
            ),
        ];
        for (end, maybe_sent, want) in cases {
            let s = end.settle(maybe_sent, AGE);
            assert_eq!(s.status, want, "maybe_sent {maybe_sent}: {:?}", s.result);
            let err = s.result.unwrap_err();
            if want == Status::Unknown {
                assert!(err.starts_with("outcome unknown"), "{err}");
            }
        }
    }

    #[test]
    fn halted_rejections_keep_their_reason() {
        let s = End::Halted(Halt::KillSwitch).settle(false, AGE);
        assert_eq!(s.result.unwrap_err(), KILL_SWITCH_REASON);
        let s = End::Halted(Halt::KillSwitch).settle(true, AGE);
        assert!(s.result.unwrap_err().contains("(kill switch)"));
    }

    #[test]
    fn waits_below_a_second_are_in_milliseconds() {
        assert_eq!(fmt_wait(Duration::from_millis(10)), "10 ms");
        assert_eq!(fmt_wait(Duration::from_millis(999)), "999 ms");
        assert_eq!(fmt_wait(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_wait(Duration::from_secs(30)), "30.0s");
    }
}
