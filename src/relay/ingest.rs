//! Webhooks in: authenticate, parse, render, choose the idempotency key, dedupe and limit, then hand the
//! record to admission.

use super::*;

impl Relay {
    /// Handles `POST /hooks/{source}` end to end.
    pub async fn ingest(self: &Arc<Self>, inb: Inbound) -> Result<Reply, RelayError> {
        self.detached(|me| async move {
            let result = me.ingest_inner(inb).await;
            if let Err(e) = &result {
                me.metrics.rejected(e.reason());
            }
            result
        })
        .await
    }

    async fn ingest_inner(self: &Arc<Self>, inb: Inbound) -> Result<Reply, RelayError> {
        let source = self.sources.get(&inb.source).ok_or_else(|| {
            RelayError::NotFound(format!(
                "unknown source '{}'; configured sources: {}",
                inb.source.chars().take(64).collect::<String>(),
                self.source_names().join(", ")
            ))
        })?;
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(RelayError::Unavailable(
                "the relay is shutting down; retry shortly".into(),
            ));
        }
        let ip = source.check_address(inb.peer, header(&inb.headers, "x-forwarded-for"))?;
        if inb.body.len() > self.body_limit {
            return Err(RelayError::PayloadTooLarge(format!(
                "body is {} bytes; the limit is {} (server.body_limit_bytes)",
                inb.body.len(),
                self.body_limit
            )));
        }
        let auth = source.authenticate(
            &inb.headers,
            inb.query_token.as_deref(),
            &inb.body,
            (self.now_unix)(),
        );
        let auth = match auth {
            Ok(a) => a,
            Err(e @ RelayError::Unauthorized(_)) => {
                if let Some(wait) = self.auth_failures.failed(ip) {
                    return Err(RelayError::RateLimited {
                        message: format!("too many failed authentications from {ip}; {e}"),
                        retry_after_secs: wait.as_secs().max(1),
                    });
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        // Authenticated from here on: everything gets a record.
        let (stored_body, format, parse_error) = match &auth.body {
            Ok(b) => (
                b.to_stored(),
                serde_json::to_value(b.format)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string)),
                None,
            ),
            Err(u) => (
                json!({ "unparsable": u.preview }),
                None,
                Some(u.error.clone()),
            ),
        };
        let mut rec =
            AlertRecord::received(self.journal.next_id(), &source.name, stored_body, format);
        rec.client_ip = Some(ip.to_string());
        let body_sha = rec.body_sha256.clone();
        let mut body = match auth.body {
            Ok(b) => b,
            Err(_) => {
                let e =
                    parse_error.unwrap_or_else(|| RelayError::BadRequest("unparsable body".into()));
                return Err(self.reject(rec, e).await);
            }
        };

        let template = match source.pick_template(&body) {
            Ok(t) => t,
            Err(e) => return Err(self.reject(rec, e).await),
        };
        rec.template = Some(template.clone());
        let rendered = self
            .templates
            .render(&template, &std::mem::take(&mut body.fields), &source.name)
            .map_err(|e| RelayError::Unprocessable(e.to_string()));
        let rendered = match rendered {
            Ok(r) => r,
            Err(e) => return Err(self.reject(rec, e).await),
        };
        let (template_key, requests, skip_reason) = match rendered {
            Rendered::Skipped { reason, key } => (key, Vec::new(), Some(reason)),
            Rendered::Requests { key, requests } => (key, requests, None),
        };
        if let Some(bad) = requests.iter().find(|r| !self.has_executor(&r.account)) {
            let e = RelayError::Unprocessable(format!(
                "template '{template}' produced account '{}', which is not configured; configured accounts: {}",
                bad.account,
                self.account_names().join(", ")
            ));
            return Err(self.reject(rec, e).await);
        }

        let (key, origin) = if let Some(id) = auth.webhook_id.filter(|s| !s.is_empty()) {
            (id, KeyOrigin::WebhookId)
        } else if let Some(h) = header(&inb.headers, "idempotency-key").filter(|s| !s.is_empty()) {
            (h.to_string(), KeyOrigin::Header)
        } else if let Some(k) = template_key.filter(|s| !s.is_empty()) {
            (k, KeyOrigin::Template)
        } else {
            (body_sha.clone(), KeyOrigin::BodySha256)
        };
        if key.len() > 512 {
            let e = RelayError::Unprocessable(format!(
                "idempotency key is {} bytes; at most 512 are accepted",
                key.len()
            ));
            return Err(self.reject(rec, e).await);
        }
        rec.idempotency_key = Some(key.clone());
        rec.key_origin = Some(origin);

        // A repeat costs no rate-limit budget.
        if let Some(found) = self.journal.find_key(&source.name, &key, &body_sha)? {
            return self.answer_existing(found, &key).await;
        }
        if self.kill_switch_on() {
            rec.executions = requests.into_iter().map(Execution::new).collect();
            return Err(self.reject(rec, RelayError::KillSwitch).await);
        }
        if let Err(limited) = self.inbound.check(&source.name) {
            // A duplicate that raced past the first look-up while its original was being claimed is still
            // a duplicate, not a rate-limit victim.
            if let Some(found) = self.journal.find_key(&source.name, &key, &body_sha)? {
                return self.answer_existing(found, &key).await;
            }
            let e = RelayError::RateLimited {
                message: format!(
                    "rate limited: source '{}' accepts {}/s (burst {}); retry after {}s",
                    source.name,
                    limited.per_second,
                    limited.burst,
                    limited.retry_after_secs()
                ),
                retry_after_secs: limited.retry_after_secs(),
            };
            rec.idempotency_key = None;
            return Err(self.reject(rec, e).await);
        }

        match skip_reason {
            Some(reason) => {
                rec.status = Status::Skipped;
                rec.reason = Some(reason);
            }
            None => {
                rec.executions = requests.into_iter().map(Execution::new).collect();
            }
        }
        let rec = match self.journal.admit(rec).await? {
            Admission::New(rec) => rec,
            other => return self.answer_existing(other, &key).await,
        };
        if let Err(e) = self.journal.sync().await {
            return Err(self.not_acknowledged(&rec, true, inb.received, e.into()));
        }
        let ack = inb.received.elapsed();
        self.metrics.acknowledged(ack);

        self.metrics.alert_status(&rec.source, rec.status.as_str());
        tracing::info!(alert_id = %rec.id, source = %rec.source, status = rec.status.as_str(), "alert recorded");

        if rec.status == Status::Skipped {
            return Ok(Reply {
                status: 200,
                body: json!({"alertId": rec.id, "status": "skipped", "reason": rec.reason}),
                headers: vec![],
            });
        }
        let wait = prefer_wait(&inb.headers);
        let waiter = wait.map(|_| self.engine.waiters.register(&rec.id));
        self.submit(&rec, true, inb.received, Some(ack), None);
        if let (Some(wait), Some(rx)) = (wait, waiter) {
            if let Ok(Ok(done)) = tokio::time::timeout(wait, rx).await {
                return Ok(Reply {
                    status: 200,
                    body: record_reply(&done),
                    headers: vec![],
                });
            }
        }
        Ok(Reply {
            status: 202,
            body: json!({"alertId": rec.id, "status": "accepted"}),
            headers: vec![],
        })
    }

    pub(super) async fn answer_existing(
        &self,
        found: Admission,
        key: &str,
    ) -> Result<Reply, RelayError> {
        match found {
            Admission::Duplicate(rec) | Admission::New(rec) => {
                // The original may have been acknowledged an instant ago: make sure it is durable too.
                self.journal.sync().await?;
                Ok(Reply {
                    status: 200,
                    body: record_reply(&rec),
                    headers: vec![("Idempotent-Replayed", "true".into())],
                })
            }
            Admission::Conflict { existing_id } => Err(RelayError::Unprocessable(format!(
                "idempotency key '{}' was already used by alert {existing_id} with a different body; send a new key for a new alert",
                key.chars().take(128).collect::<String>()
            ))),
        }
    }
}

/// `Prefer: wait=N` (RFC 7240), capped.
pub(super) fn prefer_wait(headers: &HeaderMap) -> Option<Duration> {
    for v in headers.get_all("prefer") {
        let Ok(v) = v.to_str() else { continue };
        for pref in v.split([',', ';']) {
            if let Some(n) = pref.trim().strip_prefix("wait=") {
                if let Ok(n) = n.trim().parse::<f64>() {
                    if n.is_finite() && n > 0.0 {
                        return Some(Duration::from_secs_f64(n.min(MAX_PREFER_WAIT_SECS as f64)));
                    }
                }
            }
        }
    }
    None
}
