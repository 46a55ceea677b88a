//! Admission: recording an alert durably and queueing its executions in their lanes; the
//! CrossTrade-compatible API's synchronous CancelAndBracket.

use super::*;

impl Relay {
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
            _ => e.to_string(),
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

    /// Queues a replayed record: every request runs (a replay is not superseded by the next replay).
    pub(crate) fn submit_replay(&self, rec: &AlertRecord, received: Instant) {
        self.submit(rec, false, received, None, None);
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
        for (index, e) in rec.executions.iter().enumerate() {
            if e.status != Status::Accepted {
                continue;
            }
            self.sequencer.submit(ExecJob {
                alert_id: rec.id.clone(),
                source: rec.source.clone(),
                received_at_ms: rec.received_at_ms,
                index,
                request: e.request.clone(),
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
    ) -> Result<Reply, RelayError> {
        let received = Instant::now();
        let req = BracketRequest::from_args(args, path_account, &self.instruments)
            .map_err(|e| RelayError::BadRequest(e.to_string()))?;
        if !self.has_executor(&req.account) {
            return Err(RelayError::BadRequest(format!(
                "account: unknown account '{}'; configured accounts: {}",
                req.account,
                self.account_names().join(", ")
            )));
        }
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(RelayError::Unavailable(
                "the relay is shutting down; retry shortly".into(),
            ));
        }
        let kill = self.kill_switch_on();
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
        rec.executions = vec![Execution::new(req)];
        if kill {
            return Err(self.reject(rec, RelayError::KillSwitch).await);
        }
        // No inbound limit on this path, so `admit` alone answers repeats (no separate look-up first).
        let key = rec.idempotency_key.clone().unwrap_or_default();
        self.detached(|me| async move {
            let rec = match me.journal.admit(rec).await? {
                Admission::New(rec) => rec,
                other => return me.api_existing(other, &key).await,
            };
            if let Err(e) = me.journal.sync().await {
                return Err(me.not_acknowledged(&rec, false, received, e.into()));
            }
            me.metrics.acknowledged(received.elapsed());
            let (tx, rx) = tokio::sync::oneshot::channel();
            me.submit(&rec, false, received, Some(received.elapsed()), Some(tx));
            let exec = rx
                .await
                .map_err(|_| RelayError::Internal("execution was dropped".into()))?;
            execution_reply(&exec, vec![])
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
    ) -> Result<Reply, RelayError> {
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
                let exec = rec
                    .executions
                    .first()
                    .cloned()
                    .ok_or_else(|| RelayError::Internal("record without execution".into()))?;
                execution_reply(&exec, vec![("Idempotent-Replayed", "true".into())])
            }
            Admission::Conflict { existing_id } => Err(RelayError::Unprocessable(format!(
                "Idempotency-Key '{key}' was already used by call {existing_id} with a different body; send a new key"
            ))),
        }
    }
}

/// The CrossTrade answer for a finished execution.
pub(super) fn execution_reply(
    exec: &Execution,
    headers: Vec<(&'static str, String)>,
) -> Result<Reply, RelayError> {
    let err = || {
        exec.error
            .clone()
            .unwrap_or_else(|| format!("execution {}", exec.status.as_str()))
    };
    match exec.status {
        Status::Executed => Ok(Reply {
            status: 200,
            body: serde_json::to_value(exec.outcome.as_ref()).unwrap_or(Value::Null),
            headers,
        }),
        Status::Failed => Err(RelayError::BadRequest(err())),
        Status::Rejected => Err(RelayError::RateLimited {
            message: err(),
            retry_after_secs: 1,
        }),
        Status::Unknown => Err(RelayError::BadGateway(err())),
        _ => Err(RelayError::Unavailable(err())),
    }
}
