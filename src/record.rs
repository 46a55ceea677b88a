//! The journal record of one alert: what arrived, what it rendered to, and what became of each request.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::clock::{Clock, SystemClock};
use crate::command::Command;
use crate::domain::BracketOutcome;
use crate::instruments::Instruments;

/// The life of an alert (and of each of its executions):
/// `accepted` → `executing` → `executed` | `failed` | `unknown`, or `rejected` | `skipped` | `superseded` |
/// `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Accepted,
    Executing,
    Executed,
    Failed,
    /// Sent to the broker, no answer: it may or may not have been carried out. Never re-sent by itself.
    Unknown,
    Rejected,
    Skipped,
    Superseded,
    Expired,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Accepted,
        Status::Executing,
        Status::Executed,
        Status::Failed,
        Status::Unknown,
        Status::Rejected,
        Status::Skipped,
        Status::Superseded,
        Status::Expired,
    ];

    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Accepted | Status::Executing)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Executing => "executing",
            Status::Executed => "executed",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
            Status::Rejected => "rejected",
            Status::Skipped => "skipped",
            Status::Superseded => "superseded",
            Status::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// Where an alert's idempotency key came from, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyOrigin {
    WebhookId,
    Header,
    Template,
    BodySha256,
}

/// One request of an alert (one per account on fan-out), executed on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub request: Command,
    /// The contract the request's instrument resolved to (`ES 03-27`), and the rule that chose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_rule: Option<String>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<BracketOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The alert whose bracket replaced this one before it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    /// Time spent waiting for the outbound rate limit, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limiter_wait_us: Option<u64>,
    /// Every attempt made at the broker, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// Who settled an `unknown` outcome: the broker's order list, or an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_by: Option<SettledBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at_ms: Option<u64>,
    /// What settled it: the orders the broker listed under the OCO id, or that it listed none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_seen: Option<String>,
    /// The operator's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_note: Option<String>,
    /// The position its gate saw (`flat`, `long 2`): read from the broker, or as the alert's earlier steps
    /// left it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_seen: Option<String>,
}

/// Who settled an `unknown` execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettledBy {
    /// The broker's order list showed what became of it.
    Broker,
    /// A person said so (`alerts resolve`, `POST /api/alerts/{id}/resolve`).
    Operator,
}

/// One try at the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at_ms: u64,
    /// The executor (transport) used: `paper`, `crosstrade-http`, `crosstrade-websocket`.
    pub transport: String,
    /// `ok`, or the error kind (`rejected`, `unauthorized`, `not_connected`, `throttled`, `transient`,
    /// `unknown`).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl Execution {
    /// Notes the contract of the request and the rule that makes it the contract at `at`.
    pub fn with_contract(mut self, instruments: &Instruments, at: Timestamp) -> Execution {
        self.contract_rule = instruments.explain(self.request.instrument(), at);
        if self.contract_rule.is_some() {
            self.contract = Some(self.request.instrument().to_string());
        }
        self
    }

    pub fn new(request: impl Into<Command>) -> Execution {
        Execution {
            request: request.into(),
            contract: None,
            contract_rule: None,
            status: Status::Accepted,
            executor: None,
            outcome: None,
            error: None,
            superseded_by: None,
            started_at_ms: None,
            finished_at_ms: None,
            limiter_wait_us: None,
            attempts: Vec::new(),
            settled_by: None,
            settled_at_ms: None,
            settled_seen: None,
            settled_note: None,
            position_seen: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Receipt → durable acknowledgement, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_us: Option<u64>,
    /// When the last execution finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRecord {
    pub id: String,
    pub source: String,
    pub received_at: String,
    pub received_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_origin: Option<KeyOrigin>,
    /// SHA-256 of the body as stored (secret removed); a reused key with another body is refused.
    pub body_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The body with secrets removed.
    pub body: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    pub status: Status,
    /// Why it was rejected, skipped, failed...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub executions: Vec<Execution>,
    #[serde(default)]
    pub timings: Timings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    /// When contract months were resolved (the receipt, by the relay's contracts clock); a replay resolves
    /// at this time again unless told to re-resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contracts_at_ms: Option<u64>,
    /// The records that re-drove this one (`replay`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replayed_by: Vec<String>,
}

impl AlertRecord {
    /// A record for an alert received now: `accepted`, no key, no executions yet. The body hash is taken
    /// over the body as stored (secrets already removed), so a reused key with another body is spotted.
    pub fn received(id: String, source: &str, body: Value, format: Option<String>) -> AlertRecord {
        use sha2::{Digest, Sha256};
        let body_sha256 = hex::encode(Sha256::digest(
            serde_json::to_vec(&body).unwrap_or_default(),
        ));
        // One reading of the clock for both forms, so they name the same millisecond.
        let now = SystemClock.now();
        AlertRecord {
            id,
            source: source.to_string(),
            received_at: now.to_string(),
            received_at_ms: now.as_ms(),
            idempotency_key: None,
            key_origin: None,
            body_sha256,
            format,
            body,
            template: None,
            status: Status::Accepted,
            reason: None,
            executions: Vec::new(),
            timings: Timings::default(),
            client_ip: None,
            replay_of: None,
            contracts_at_ms: None,
            replayed_by: Vec::new(),
        }
    }

    /// Derives the alert's status from its executions (see [`RecordState::refresh_status`]).
    pub fn refresh_status(&mut self) {
        let mut st = self.take_state();
        st.refresh_status();
        self.set_state(st);
    }

    pub fn is_final(&self) -> bool {
        self.status.is_terminal()
    }

    /// A copy of the changing part, as it is stored with the record.
    pub fn state(&self) -> RecordState {
        RecordState {
            status: self.status,
            reason: self.reason.clone(),
            executions: self.executions.clone(),
            timings: self.timings.clone(),
            replayed_by: self.replayed_by.clone(),
        }
    }

    /// Moves the changing part out (the record keeps its status; executions and reason are left empty).
    pub fn take_state(&mut self) -> RecordState {
        RecordState {
            status: self.status,
            reason: self.reason.take(),
            executions: std::mem::take(&mut self.executions),
            timings: std::mem::take(&mut self.timings),
            replayed_by: std::mem::take(&mut self.replayed_by),
        }
    }

    /// Puts the changing part in, replacing what was there.
    pub fn set_state(&mut self, st: RecordState) {
        self.status = st.status;
        self.reason = st.reason;
        self.executions = st.executions;
        self.timings = st.timings;
        self.replayed_by = st.replayed_by;
    }
}

/// The part of a record that changes after it is stored: status, reason, executions and timings. The
/// journal keeps it apart from the rest (the body above all), so an execution step rewrites a few hundred
/// bytes instead of the whole record. Its JSON field names are the record's, so it also reads straight out of
/// a whole record, skipping the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordState {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub executions: Vec<Execution>,
    #[serde(default)]
    pub timings: Timings,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replayed_by: Vec<String>,
}

impl RecordState {
    /// Derives the alert's status from its executions: in progress while any runs, otherwise the most
    /// alarming outcome (unknown before failed before rejected ... before superseded).
    pub fn refresh_status(&mut self) {
        if self.executions.is_empty() {
            return;
        }
        let any_open = self.executions.iter().any(|e| !e.status.is_terminal());
        if any_open {
            let started = self.executions.iter().any(|e| e.status != Status::Accepted);
            self.status = if started {
                Status::Executing
            } else {
                Status::Accepted
            };
            return;
        }
        const ORDER: [Status; 7] = [
            Status::Unknown,
            Status::Failed,
            Status::Rejected,
            Status::Expired,
            Status::Executed,
            Status::Superseded,
            Status::Skipped,
        ];
        self.status = ORDER
            .into_iter()
            .find(|s| self.executions.iter().any(|e| e.status == *s))
            .unwrap_or(Status::Executed);
        if self.reason.is_none()
            && matches!(
                self.status,
                Status::Failed | Status::Rejected | Status::Skipped
            )
        {
            self.reason = self
                .executions
                .iter()
                .find(|e| e.status == self.status)
                .and_then(|e| e.error.clone());
        }
    }

    pub fn is_final(&self) -> bool {
        self.status.is_terminal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Action;

    fn exec(status: Status) -> Execution {
        let mut e = Execution::new(crate::domain::BracketRequest {
            account: "Sim101".into(),
            instrument: "ES 12-26".into(),
            action: Action::Buy,
            quantity: 1,
            take_profit: Some(1.0),
            stop_loss: None,
            oco_id: None,
            cancel_delay_ms: None,
            relay: Default::default(),
        });
        e.status = status;
        e
    }

    #[test]
    fn status_aggregates_executions() {
        let mut r = AlertRecord {
            id: "x".into(),
            source: "s".into(),
            received_at: String::new(),
            received_at_ms: 0,
            idempotency_key: None,
            key_origin: None,
            body_sha256: String::new(),
            format: None,
            body: Value::Null,
            template: None,
            status: Status::Accepted,
            reason: None,
            executions: vec![exec(Status::Executed), exec(Status::Accepted)],
            timings: Timings::default(),
            client_ip: None,
            replay_of: None,
            contracts_at_ms: None,
            replayed_by: Vec::new(),
        };
        r.refresh_status();
        assert_eq!(r.status, Status::Executing);
        r.executions[1].status = Status::Superseded;
        r.refresh_status();
        assert_eq!(r.status, Status::Executed);
        r.executions[0].status = Status::Superseded;
        r.refresh_status();
        assert_eq!(r.status, Status::Superseded);
        r.executions[0].status = Status::Failed;
        r.executions[0].error = Some("boom".into());
        r.refresh_status();
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.reason.as_deref(), Some("boom"));
    }

    /// The journal reads a record's state straight out of the whole record's JSON, and writes it on its own.
    #[test]
    fn state_reads_out_of_a_whole_record_and_back_in() {
        let mut r = AlertRecord::received(
            "01X".into(),
            "tv",
            serde_json::json!({"ticker": "ES1!", "nested": {"a": [1, 2, {"b": null}]}}),
            Some("json".into()),
        );
        r.executions = vec![exec(Status::Executed), exec(Status::Failed)];
        r.executions[1].error = Some("no".into());
        r.timings.ack_us = Some(42);
        r.refresh_status();
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.reason.as_deref(), Some("no"));
        let whole = serde_json::to_vec(&r).unwrap();
        let st: RecordState = serde_json::from_slice(&whole).unwrap();
        assert_eq!(st.status, Status::Failed);
        assert_eq!(st.executions, r.executions);
        assert_eq!(st.timings.ack_us, Some(42));

        let mut back = r.clone();
        let taken = back.take_state();
        assert!(back.executions.is_empty() && back.reason.is_none());
        assert_eq!(taken, st);
        back.set_state(taken);
        assert_eq!(back, r);
    }

    #[test]
    fn status_round_trips_as_lowercase() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }
}
