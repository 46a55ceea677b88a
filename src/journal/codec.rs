//! Records and states as the journal stores them (JSON), and the partial views that read only what pruning
//! and the claim rebuild need.

use serde::Deserialize;

use super::JournalError;
use crate::record::{AlertRecord, RecordState, Status};

pub(super) fn encode(rec: &AlertRecord) -> Result<Vec<u8>, JournalError> {
    serde_json::to_vec(rec).map_err(|e| JournalError::Storage(e.to_string()))
}

pub(super) fn encode_state(st: &RecordState) -> Result<Vec<u8>, JournalError> {
    serde_json::to_vec(st).map_err(|e| JournalError::Storage(e.to_string()))
}

/// The fields of a stored record that pruning reads (see `Journal::prune_view`), and the key rebuild
/// (`load_claims`: source and key).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PruneView {
    pub(super) source: String,
    pub(super) received_at_ms: u64,
    #[serde(default)]
    pub(super) idempotency_key: Option<String>,
    pub(super) status: Status,
}

/// The status of a stored state, the rest skipped.
#[derive(Deserialize)]
pub(super) struct StatusView {
    pub(super) status: Status,
}

pub(super) fn decode_state(id: &str, raw: &[u8]) -> Result<RecordState, JournalError> {
    serde_json::from_slice(raw).map_err(|e| JournalError::Corrupt(id.to_string(), e.to_string()))
}

/// The record stored as `raw` under `id`, with `state` (from `alert_state`) over the one stored with it.
pub(super) fn with_state(
    id: &str,
    raw: &[u8],
    state: Option<sled::IVec>,
) -> Result<AlertRecord, JournalError> {
    let mut rec = decode(id, raw)?;
    if let Some(st) = state {
        rec.set_state(decode_state(id, &st)?);
    }
    Ok(rec)
}

pub(super) fn decode(id: &str, raw: &[u8]) -> Result<AlertRecord, JournalError> {
    serde_json::from_slice(raw).map_err(|e| JournalError::Corrupt(id.to_string(), e.to_string()))
}
