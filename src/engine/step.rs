//! Running one job: for each step, the position read and gate where it has one, then the attempts at the
//! broker under the outbound budget and the age limit; a step that does not succeed ends the sequence.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::ending::{fmt_wait, End, Halt, Read, Settled, StepEnd};
use super::{Durability, Engine, ExecJob, Step};
use crate::clock::now_ms;
use crate::command::Command;
use crate::domain::{describe_position, OcoId, OrderId};
use crate::error::KILL_SWITCH_REASON;
use crate::executor::{execute, BrokerPosition, ExecError, Executor};
use crate::notify::Event;
use crate::record::{Attempt, Execution, Status};
use crate::sequencer::Worker;
use crate::settle::Unsettled;

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

/// The delay before another try after `e`: the broker's Retry-After, else the backoff; none when `e` ends
/// the tries or the next one would come after `deadline_ms` (the alert's age limit).
fn retry_delay(e: &ExecError, backoff: Duration, deadline_ms: u64) -> Option<Duration> {
    let delay = match e {
        ExecError::Throttled {
            retry_after: Some(after),
        } => *after,
        e if e.retryable() => backoff,
        _ => return None,
    };
    (now_ms() + delay.as_millis() as u64 <= deadline_ms).then_some(delay)
}

impl Engine {
    /// Takes one request's room in the outbound budget (a read or a send), adding the wait to
    /// `total_wait_us`; false when the budget had none within its maximum wait.
    async fn take_budget(&self, total_wait_us: &mut u64) -> bool {
        let waited = self.outbound.acquire().await;
        let waited_us = match waited {
            Ok(w) | Err(w) => w.as_micros() as u64,
        };
        *total_wait_us += waited_us;
        self.metrics.limiter_wait(waited_us);
        waited.is_ok()
    }

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
            if !self.take_budget(total_wait_us).await {
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
            match retry_delay(&e, backoff, deadline_ms) {
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
            if !self.take_budget(&mut total_wait_us).await {
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
                Err(e) if may_repeat => retry_delay(e, backoff, deadline_ms),
                _ => None,
            };
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
                if let Some(u) = exec
                    .as_ref()
                    .and_then(|e| Unsettled::from_execution(&id, index, e, now_ms()))
                {
                    self.settler.track(u);
                }
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
