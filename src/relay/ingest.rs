//! Webhooks in: authenticate, parse, render, choose the idempotency key, dedupe and limit, then hand the
//! record to admission.

use super::admission::{Admitted, InboundGate, Queueing};
use super::*;

impl Relay {
    /// Handles `POST /hooks/{source}` end to end.
    pub async fn ingest(self: &Arc<Self>, inb: Inbound) -> Result<Ingested, RelayError> {
        self.detached(|me| async move {
            // Counted under configured sources only: a path anyone can invent must not add series.
            let source = if me.sources.contains_key(&inb.source) {
                inb.source.clone()
            } else {
                "unknown".to_string()
            };
            let result = me.ingest_inner(inb).await;
            if let Err(e) = &result {
                me.metrics.rejected(&source, e.reason());
            }
            result
        })
        .await
    }

    async fn ingest_inner(self: &Arc<Self>, inb: Inbound) -> Result<Ingested, RelayError> {
        let source = self.sources.get(&inb.source).ok_or_else(|| {
            RelayError::UnknownSource(format!(
                "unknown source '{}'; configured sources: {}",
                inb.source.chars().take(64).collect::<String>(),
                self.source_names().join(", ")
            ))
        })?;
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(RelayError::ShuttingDown);
        }
        let ip = source.check_address(inb.peer, header(&inb.headers, "x-forwarded-for"))?;
        if inb.body.len() > self.body_limit {
            return Err(RelayError::BodyTooLarge(format!(
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
            Err(e @ RelayError::Authentication(_)) => {
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
                let e = parse_error.unwrap_or_else(|| RelayError::Body("unparsable body".into()));
                return Err(self.reject(rec, e).await);
            }
        };

        let template = match source.pick_template(&body) {
            Ok(t) => t,
            Err(e) => return Err(self.reject(rec, e).await),
        };
        rec.template = Some(template.clone());
        // Contract months resolve at the receipt (`ES1!` → the front month of that day).
        let contracts_at = self.contracts_now();
        rec.contracts_at_ms = Some(contracts_at.as_ms());
        let rendered = self
            .templates
            .render_at(
                &template,
                &std::mem::take(&mut body.fields),
                &source.name,
                contracts_at,
            )
            .map_err(|e| RelayError::Template(e.to_string()));
        let rendered = match rendered {
            Ok(r) => r,
            Err(e) => return Err(self.reject(rec, e).await),
        };
        let (template_key, requests, skip_reason) = match rendered {
            Rendered::Skipped { reason, key } => (key, Vec::new(), Some(reason)),
            Rendered::Requests { key, requests } => (key, requests, None),
        };
        if let Some(bad) = requests.iter().find(|r| !self.has_executor(r.account())) {
            let e = RelayError::Template(format!(
                "template '{template}' produced account '{}', which is not configured; configured accounts: {}",
                bad.account(),
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
            let e = RelayError::KeyTooLong(format!(
                "idempotency key is {} bytes; at most 512 are accepted",
                key.len()
            ));
            return Err(self.reject(rec, e).await);
        }
        rec.idempotency_key = Some(key.clone());
        rec.key_origin = Some(origin);

        // A repeat costs no rate-limit budget.
        if let Some(found) = self.journal.find_key(&source.name, &key, &body_sha)? {
            if let Admission::Conflict { existing_id } = &found {
                // Authenticated, so it gets a record of its own, like every other refusal.
                let e = key_conflict(&key, existing_id);
                return Err(self.reject(rec, e).await);
            }
            return self.answer_existing(found, &key).await;
        }
        match skip_reason {
            Some(reason) => {
                rec.status = Status::Skipped;
                rec.reason = Some(reason);
            }
            None => {
                rec.executions = requests
                    .into_iter()
                    .map(|r| Execution::new(r).with_contract(&self.instruments, contracts_at))
                    .collect();
            }
        }
        let queueing = Queueing {
            received: inb.received,
            supersedable: true,
            inbound: Some(InboundGate {
                source: &source.name,
                key: &key,
                body_sha: &body_sha,
            }),
            wait_record: inb.wait.is_some(),
            reply: None,
        };
        let (rec, done) = match self.admit_and_queue(rec, queueing).await? {
            Admitted::New { rec, done } => (rec, done),
            Admitted::Existing(found) => return self.answer_existing(found, &key).await,
        };
        if rec.status == Status::Skipped {
            return Ok(Ingested::Skipped {
                alert_id: rec.id,
                reason: rec.reason,
            });
        }
        if let (Some(wait), Some(rx)) = (inb.wait, done) {
            if let Ok(Ok(done)) = tokio::time::timeout(wait, rx).await {
                return Ok(Ingested::Finished(done));
            }
        }
        Ok(Ingested::Accepted { alert_id: rec.id })
    }

    pub(super) async fn answer_existing(
        &self,
        found: Admission,
        key: &str,
    ) -> Result<Ingested, RelayError> {
        match found {
            Admission::Duplicate(rec) | Admission::New(rec) => {
                // The original may have been acknowledged an instant ago: make sure it is durable too.
                self.journal.sync().await?;
                Ok(Ingested::Repeat(rec))
            }
            Admission::Conflict { existing_id } => Err(key_conflict(key, &existing_id)),
        }
    }
}

/// A webhook's key already used by `existing_id` with another body.
fn key_conflict(key: &str, existing_id: &str) -> RelayError {
    RelayError::KeyConflict(format!(
        "idempotency key '{}' was already used by alert {existing_id} with a different body; send a new key for a new alert",
        key.chars().take(128).collect::<String>()
    ))
}
