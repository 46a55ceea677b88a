//! Helpers shared by the journal's unit tests.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{Journal, JournalError};
use crate::clock::now_ms;
use crate::record::{AlertRecord, Status, Timings};

/// Opens the journal in `dir` again after a handle was dropped in this process.
pub(super) fn reopen(dir: &Path, window: Duration) -> Result<Journal, JournalError> {
    crate::test_support::retry_while_locked(|| Journal::open(dir, window))
}

pub(super) fn rec(j: &Journal, key: Option<&str>, sha: &str) -> AlertRecord {
    AlertRecord {
        id: j.next_id(),
        source: "tv".into(),
        received_at: String::new(),
        received_at_ms: now_ms(),
        idempotency_key: key.map(str::to_string),
        key_origin: None,
        body_sha256: sha.into(),
        format: None,
        body: json!({}),
        template: None,
        status: Status::Accepted,
        reason: None,
        executions: vec![],
        timings: Timings::default(),
        client_ip: None,
        replay_of: None,
        contracts_at_ms: None,
        replayed_by: Vec::new(),
    }
}
