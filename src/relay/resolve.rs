//! A person settles what the broker could not: `POST /api/alerts/{id}/resolve` and
//! `alert-relay alerts resolve ID --as executed|failed --note TEXT`.

use crate::settle::{resolve_by_operator, Resolution};

use super::*;

impl Relay {
    /// Settles every `unknown` execution of alert `id` as `how`, durably, with the operator's note. Only an
    /// alert with an `unknown` execution can be resolved.
    pub async fn resolve(
        &self,
        id: &str,
        how: Resolution,
        note: &str,
    ) -> Result<AlertRecord, RelayError> {
        let rec = self.get_alert(id)?;
        if !rec.executions.iter().any(|e| e.status == Status::Unknown) {
            return Err(RelayError::Conflict(format!(
                "alert {} is {}, not unknown: only an execution whose outcome is unknown can be resolved",
                rec.id,
                rec.status.as_str()
            )));
        }
        let at = now_ms();
        let updated = self.journal.update(&rec.id, |st| {
            resolve_by_operator(&mut st.executions, how, note, at);
        })?;
        let Some(state) = updated else {
            return Err(RelayError::NotFound(format!("no alert with id '{id}'")));
        };
        self.journal.sync().await?;
        let mut rec = rec;
        rec.set_state(state);
        for (i, e) in rec.executions.iter().enumerate() {
            if e.settled_at_ms == Some(at) && self.unknown().remove(&rec.id, i) {
                tracing::info!(alert_id = %rec.id, account = %e.request.account(), instrument = %e.request.instrument(), status = e.status.as_str(), note, "unknown outcome resolved by an operator");
                let reason = if note.is_empty() { "no note" } else { note };
                self.notifier
                    .notify(Event::settled(&rec.id, e, "operator", reason.to_string()));
            }
        }
        self.metrics.alert_status(&rec.source, rec.status.as_str());
        Ok(rec)
    }
}
