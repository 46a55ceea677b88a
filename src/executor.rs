//! The one trait every execution backend implements: the embedded paper broker and the CrossTrade live
//! client. The pipeline only ever talks to `dyn Executor`.
//!
//! One call is one *attempt*. Whether and when to try again is the engine's decision, made from the error
//! kind: the engine keeps every attempt in the record and bounds retries by the alert's age.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{BracketOutcome, BracketRequest};

/// Why an attempt did not succeed, split by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    /// The broker refused the request (HTTP 400); nothing to retry. The message is the broker's, verbatim.
    #[error("{0}")]
    Rejected(String),
    /// The broker refused our credentials (HTTP 401/403).
    #[error("broker refused the token: {0}")]
    Unauthorized(String),
    /// CrossTrade's 408: the NinjaTrader add-on is not connected.
    #[error("NinjaTrader add-on not connected")]
    NotConnected,
    /// Throttled (HTTP 429): nothing was done; retry after the given delay (or a backoff when absent).
    #[error("throttled by the broker")]
    Throttled { retry_after: Option<Duration> },
    /// The request never reached the broker (connection refused, not connected yet): safe to retry.
    #[error("broker not reachable: {0}")]
    Transient(String),
    /// The request may or may not have been carried out (timeout, 5xx, connection lost after sending).
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

impl ExecError {
    /// May the engine try again (within the alert's age limit)? CancelAndBracket converges — it cancels
    /// everything on the instrument and places one bracket with the same OCO id — so even an unknown
    /// outcome may be retried while the alert is young.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ExecError::Throttled { .. } | ExecError::Transient(_) | ExecError::Unknown(_)
        )
    }

    /// Short label for records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ExecError::Rejected(_) => "rejected",
            ExecError::Unauthorized(_) => "unauthorized",
            ExecError::NotConnected => "not_connected",
            ExecError::Throttled { .. } => "throttled",
            ExecError::Transient(_) => "transient",
            ExecError::Unknown(_) => "unknown",
        }
    }
}

#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Short name for logs and records (`paper`, `crosstrade-http`, `crosstrade-websocket`).
    fn name(&self) -> &str;

    /// One attempt at a validated CancelAndBracket request: cancel, wait, place.
    async fn cancel_and_bracket(&self, req: &BracketRequest) -> Result<BracketOutcome, ExecError>;

    /// Does the backend keep its state in the relay's own journal database? Its writes then follow the
    /// relay's in the same log, and a crash that loses the `executing` mark loses the call's effects too, so
    /// the engine need not wait for that mark to reach the disk before calling. False for anything remote.
    fn shares_journal_log(&self) -> bool {
        false
    }

    /// Is the backend usable right now (for `/readyz`)? `Err` says why not.
    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}
