//! Admission: the one tail every path ends in. Webhooks, the CrossTrade-compatible API and replays each
//! build a record their own way, then [`Relay::admit_and_queue`] checks the accounts and the kill switch,
//! records it durably (a repeat answers with the original), and queues its executions in their lanes.
//! Also here: the API's synchronous CancelAndBracket.

use tokio::sync::oneshot;

use super::*;

/// How a path wants its record admitted and queued.
pub(crate) struct Queueing<'a> {
    /// When the alert was received (acknowledgement and end-to-end latency count from here).
    pub received: Instant,
    /// May a newer alert of the lane supersede it while it waits? Webhooks: yes; a synchronous call, whose
    /// caller waits for this very execution, and a replay: no.
    pub supersedable: bool,
    /// The webhook's per-source inbound limit, checked after the kill switch; refused, the alert claims no
    /// idempotency key. `None`: not limited (the API and replays are bounded by the outbound budget).
    pub inbound: Option<InboundGate<'a>>,
    /// Register for the final record before queueing (`Prefer: wait`, replays).
    pub wait_record: bool,
    /// Receives the first execution's final state (the synchronous API).
    pub reply: Option<oneshot::Sender<Execution>>,
}

/// What the inbound limit needs to tell a rate-limit victim from a duplicate that raced past the first look-up.
pub(crate) struct InboundGate<'a> {
    pub source: &'a str,
    pub key: &'a str,
    pub body_sha: &'a str,
}

/// What admission did with a record.
pub(crate) enum Admitted {
    /// Recorded durably, counted, and (unless skipped) queued. `done` resolves with the final record when
    /// `wait_record` asked for it.
    New {
        rec: AlertRecord,
        done: Option<oneshot::Receiver<AlertRecord>>,
    },
    /// The journal already holds this key: the original (or a conflict), nothing recorded.
    Existing(Admission),
}

impl Relay {
    /// Records `rec` and queues its executions: every execution's account must have an executor, the kill
    /// switch must be off (refused, the record is kept as `rejected`), the inbound limit (webhooks) must
    /// allow it; then it is admitted under its key, made durable before anyone is told, counted, and queued.
    pub(crate) async fn admit_and_queue(
        &self,
        rec: AlertRecord,
        q: Queueing<'_>,
    ) -> Result<Admitted, RelayError> {
        if let Some(bad) = rec
            .executions
            .iter()
            .find(|e| !self.has_executor(e.request.account()))
        {
            let e = RelayError::Template(format!(
                "account '{}' is not configured; configured accounts: {}",
                bad.request.account(),
                self.account_names().join(", ")
            ));
            return Err(self.reject(rec, e).await);
        }
        if self.kill_switch_on() {
            return Err(self.reject(rec, RelayError::KillSwitch).await);
        }
        if let Some(gate) = &q.inbound {
            if let Err(limited) = self.inbound.check(gate.source) {
                // A duplicate that raced past the first look-up while its original was being claimed is
                // still a duplicate, not a rate-limit victim.
                if let Some(found) = self
                    .journal
                    .find_key(gate.source, gate.key, gate.body_sha)?
                {
                    return Ok(Admitted::Existing(found));
                }
                let e = RelayError::RateLimited {
                    message: format!(
                        "rate limited: source '{}' accepts {}/s (burst {}); retry after {}s",
                        gate.source,
                        limited.per_second,
                        limited.burst,
                        limited.retry_after_secs()
                    ),
                    retry_after_secs: limited.retry_after_secs(),
                };
                return Err(self.reject(rec, e).await);
            }
        }
        let rec = match self.journal.admit(rec).await? {
            Admission::New(rec) => rec,
            other => return Ok(Admitted::Existing(other)),
        };
        if let Err(e) = self.journal.sync().await {
            return Err(self.not_acknowledged(&rec, q.supersedable, q.received, e.into()));
        }
        let ack = q.received.elapsed();
        self.metrics.acknowledged(ack);
        self.metrics.alert_status(&rec.source, rec.status.as_str());
        tracing::info!(alert_id = %rec.id, source = %rec.source, status = rec.status.as_str(), "alert recorded");
        if rec.status == Status::Skipped {
            return Ok(Admitted::New { rec, done: None });
        }
        let done = q.wait_record.then(|| self.engine.waiters.register(&rec.id));
        self.submit(&rec, q.supersedable, q.received, Some(ack), q.reply);
        Ok(Admitted::New { rec, done })
    }

    /// Records an authenticated alert that will not execute, and returns the error to answer. Refused by the
    /// kill switch, its executions are rejected too, each with the same reason.
    pub(super) async fn reject(&self, mut rec: AlertRecord, e: RelayError) -> RelayError {
        rec.status = Status::Rejected;
        rec.reason = Some(match e {
            RelayError::KillSwitch => {
                for ex in &mut rec.executions {
                    ex.status = Status::Rejected;
                    ex.error = Some(KILL_SWITCH_REASON.into());
                }
                KILL_SWITCH_REASON.to_string()
            }
            // Refused before its requests were final: the record keeps none.
            _ => {
                rec.executions.clear();
                e.to_string()
            }
        });
        // Rejections claim no idempotency key: a corrected retry must go through.
        rec.idempotency_key = None;
        // Durable before the answer, like every other record.
        if let Err(je) = self.journal.insert(&rec) {
            tracing::error!(error = %je, "cannot record a rejected alert");
        } else if let Err(je) = self.journal.sync().await {
            tracing::error!(error = %je, "cannot make a rejected alert durable");
        } else {
            self.metrics.alert_status(&rec.source, "rejected");
            tracing::info!(alert_id = %rec.id, source = %rec.source, reason = %e, "alert rejected");
        }
        e
    }

    /// Queues every execution of a durable record in its lane.
    pub(super) fn submit(
        &self,
        rec: &AlertRecord,
        supersedable: bool,
        received: Instant,
        ack: Option<Duration>,
        mut reply: Option<tokio::sync::oneshot::Sender<Execution>>,
    ) {
        let stored = rec.state();
        // One job per lane, its steps in the alert's order: a sequence (close, enter, bracket) runs in order
        // and stops at the first step that does not succeed.
        let mut lanes: Vec<((String, String), Vec<Step>)> = Vec::new();
        for (index, e) in rec.executions.iter().enumerate() {
            let step = Step {
                index,
                request: e.request.clone(),
                status: e.status,
            };
            let lane = e.request.lane();
            match lanes.iter_mut().find(|(l, _)| *l == lane) {
                Some((_, steps)) => steps.push(step),
                None => lanes.push((lane, vec![step])),
            }
        }
        for (_, steps) in lanes {
            if steps.iter().all(|s| s.status != Status::Accepted) {
                continue;
            }
            self.sequencer.submit(ExecJob {
                alert_id: rec.id.clone(),
                source: rec.source.clone(),
                received_at_ms: rec.received_at_ms,
                steps,
                supersedable,
                reply: reply.take(),
                received,
                ack_us: ack.map(|d| d.as_micros() as u64),
                known: std::sync::Mutex::new(Some(KnownState::admitted(stored.clone()))),
            });
        }
    }

    /// `CancelAndBracket` over HTTP or WebSocket: journaled, ordered and limited like a webhook, but answered
    /// synchronously with the broker's outcome.
    pub async fn cancel_and_bracket(
        self: &Arc<Self>,
        path_account: Option<&str>,
        args: &Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<CallOutcome, RelayError> {
        let received = Instant::now();
        let at = self.contracts_now();
        let req =
            BracketRequest::from_args(args, path_account, &self.instruments, at).map_err(|e| {
                match e {
                    RequestError::Contract(c) => RelayError::Contract(c.to_string()),
                    e => RelayError::InvalidRequest(e.to_string()),
                }
            })?;
        if !self.has_executor(&req.account) {
            return Err(RelayError::InvalidRequest(format!(
                "account: unknown account '{}'; configured accounts: {}",
                req.account,
                self.account_names().join(", ")
            )));
        }
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(RelayError::ShuttingDown);
        }
        let mut rec = AlertRecord::received(
            self.journal.next_id(),
            API_SOURCE,
            Value::Object(args.clone()),
            Some("json".into()),
        );
        rec.idempotency_key = idempotency_key
            .filter(|k| !k.is_empty())
            .map(|k| format!("{}/{k}", req.account));
        rec.key_origin = idempotency_key.map(|_| KeyOrigin::Header);
        rec.contracts_at_ms = Some(at.as_ms());
        rec.executions = vec![Execution::new(req).with_contract(&self.instruments, at)];
        // No inbound limit on this path, so `admit` alone answers repeats (no separate look-up first).
        let key = rec.idempotency_key.clone().unwrap_or_default();
        self.detached(|me| async move {
            let (tx, rx) = oneshot::channel();
            let queueing = Queueing {
                received,
                supersedable: false,
                inbound: None,
                wait_record: false,
                reply: Some(tx),
            };
            match me.admit_and_queue(rec, queueing).await? {
                Admitted::New { .. } => {}
                Admitted::Existing(found) => return me.api_existing(found, &key).await,
            }
            let execution = rx
                .await
                .map_err(|_| RelayError::Internal("execution was dropped".into()))?;
            Ok(CallOutcome {
                execution,
                repeat: false,
            })
        })
        .await
    }

    /// An admitted record whose flush failed: it is in the journal, so it runs like any other (start-up
    /// recovery would run it too); the sender hears the failure and, retrying with the same key, gets this
    /// record back instead of a second execution.
    pub(crate) fn not_acknowledged(
        &self,
        rec: &AlertRecord,
        supersedable: bool,
        received: Instant,
        e: RelayError,
    ) -> RelayError {
        tracing::error!(alert_id = %rec.id, error = %e, "alert recorded but not flushed; executing it anyway");
        if rec.status != Status::Skipped {
            self.submit(rec, supersedable, received, None, None);
        }
        e
    }

    pub(super) async fn api_existing(
        &self,
        found: Admission,
        key: &str,
    ) -> Result<CallOutcome, RelayError> {
        match found {
            Admission::Duplicate(rec) | Admission::New(rec) => {
                let rec = if rec.is_final() {
                    rec
                } else {
                    // Still running: wait for it rather than answer half a story.
                    let rx = self.engine.waiters.register(&rec.id);
                    match self.journal.get(&rec.id)? {
                        Some(now) if now.is_final() => now,
                        _ => rx.await.map_err(|_| {
                            RelayError::Internal("original execution was dropped".into())
                        })?,
                    }
                };
                // The final state may be an instant old and not yet flushed (nobody was waiting for it
                // when it was written): on disk before anyone is told.
                self.journal.sync().await?;
                let execution = rec
                    .executions
                    .first()
                    .cloned()
                    .ok_or_else(|| RelayError::Internal("record without execution".into()))?;
                Ok(CallOutcome {
                    execution,
                    repeat: true,
                })
            }
            Admission::Conflict { existing_id } => Err(RelayError::KeyConflict(format!(
                "Idempotency-Key '{key}' was already used by call {existing_id} with a different body; send a new key"
            ))),
        }
    }
}
