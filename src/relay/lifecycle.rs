//! Start-up recovery, background maintenance and shutdown.

use super::*;

impl Relay {
    /// Start-up recovery, in one pass over the journal:
    /// - `executing` executions (sent, no answer) become `unknown` and are never re-sent by themselves;
    /// - `accepted` executions older than the age limit become `expired`;
    /// - `accepted` executions whose lane already saw a newer alert start are `superseded` by it (running
    ///   them now would put an old bracket back over a newer one);
    /// - the rest run now, queued in id order so every lane keeps arrival order.
    pub fn recover(&self) -> Result<Vec<String>, RelayError> {
        let mut notes = Vec::new();
        let mut open = Vec::new();
        let mut newest_started: HashMap<(String, String), String> = HashMap::new();
        self.unknown().clear();
        self.journal.for_each(|rec| {
            for (i, e) in rec.executions.iter().enumerate() {
                if let Some(u) = Unsettled::of(&rec, i) {
                    self.unknown().insert(u);
                }
                if matches!(
                    e.status,
                    Status::Executing | Status::Executed | Status::Unknown | Status::Failed
                ) {
                    // Oldest first: a later record overwrites an earlier one.
                    newest_started.insert(e.request.lane(), rec.id.clone());
                }
            }
            if matches!(rec.status, Status::Accepted | Status::Executing) {
                open.push(rec);
            }
        })?;
        let max_age = self.max_age;
        for rec in open {
            let age = Duration::from_millis(now_ms().saturating_sub(rec.received_at_ms));
            let updated = self.journal.update(&rec.id, |r| {
                for e in &mut r.executions {
                    let newer = newest_started
                        .get(&e.request.lane())
                        .filter(|n| n.as_str() > rec.id.as_str());
                    match e.status {
                        Status::Executing => {
                            e.status = Status::Unknown;
                            e.error = Some("the relay stopped while this was sent to the broker; asking the broker for the bracket's orders".into());
                            // The attempt in flight got no answer: it is kept like every other one.
                            e.attempts.push(Attempt {
                                at_ms: now_ms(),
                                transport: e.executor.clone().unwrap_or_default(),
                                status: "unknown".into(),
                                error: Some("in flight when the relay stopped; no answer was received".into()),
                                duration_ms: 0,
                            });
                        }
                        Status::Accepted if age > max_age => {
                            e.status = Status::Expired;
                            e.error = Some(format!(
                                "not executed before a restart and older than {}s",
                                max_age.as_secs()
                            ));
                        }
                        Status::Accepted if newer.is_some() => {
                            e.status = Status::Superseded;
                            e.superseded_by = newer.cloned();
                        }
                        _ => {}
                    }
                }
            })?;
            let Some(state) = updated else { continue };
            // The record as walked above, with the state just written: no second read.
            let mut r = rec;
            r.set_state(state);
            for i in 0..r.executions.len() {
                if let Some(u) = Unsettled::of(&r, i) {
                    self.unknown().insert(u);
                }
            }
            match r.status {
                Status::Unknown => {
                    tracing::warn!(alert_id = %r.id, "outcome unknown after restart");
                    for e in r.executions.iter().filter(|e| e.status == Status::Unknown) {
                        let reason = e.error.as_deref().unwrap_or("was executing at shutdown");
                        let (account, instrument) = (e.request.account(), e.request.instrument());
                        let ended =
                            Event::execution_ended(e.status, &r.id, account, instrument, reason);
                        ended.into_iter().for_each(|ev| self.notifier.notify(ev));
                    }
                    notes.push(format!(
                        "alert {} is unknown (was executing at shutdown)",
                        r.id
                    ));
                }
                Status::Expired => notes.push(format!("alert {} expired", r.id)),
                _ => {}
            }
            self.submit(&r, r.source != API_SOURCE, Instant::now(), None, None);
        }
        Ok(notes)
    }

    /// Asks the broker about every unsettled `unknown` execution (those found at start-up), each in its own
    /// task, after its executor's in-flight bound.
    pub fn spawn_settlements(&self) {
        for u in self.unknown().list() {
            self.engine.settler.track(u);
        }
    }

    /// Background upkeep: prune expired idempotency keys and limiter memory.
    pub fn spawn_maintenance(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let every = self.prune_interval;
        tokio::spawn(async move {
            // Four times a second the record count is checked against `max_records` (an atomic read), so a
            // burst is pruned back at once instead of at the next full pass: under saturation a 1-s check
            // let the journal overshoot its bound and RSS pass 100 MB (BENCHMARKS.md, decision log).
            let mut tick = tokio::time::interval(every.min(Duration::from_millis(250)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut last_full = Instant::now();
            loop {
                tick.tick().await;
                let Some(relay) = me.upgrade() else { break };
                let full = last_full.elapsed() >= every;
                if !full && relay.journal.record_count() <= relay.max_records {
                    continue;
                }
                if full {
                    last_full = Instant::now();
                }
                // sled calls block: off the async workers.
                let r = relay.clone();
                let _ = tokio::task::spawn_blocking(move || r.maintain(full)).await;
            }
        });
    }

    /// One maintenance pass: records beyond retention (with their keys); with `full`, also expired keys and
    /// the auth-failure table.
    pub(super) fn maintain(&self, full: bool) {
        if full {
            match self.journal.prune_keys() {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "expired idempotency keys pruned"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "pruning idempotency keys failed"),
            }
            self.auth_failures.retain_recent();
        }
        match self.journal.prune_records(self.retention, self.max_records) {
            Ok(n) if n > 0 => tracing::info!(pruned = n, "old records pruned"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning records failed"),
        }
    }

    /// Stop accepting, let in-flight executions finish within the grace period, flush.
    pub async fn shutdown(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        if tokio::time::timeout(self.shutdown_grace, self.sequencer.idle())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over with executions still running");
        }
        if let Err(e) = self.journal.flush_now() {
            tracing::error!(error = %e, "final journal flush failed");
        }
    }
}
