//! The one trait every execution backend implements: the embedded paper broker and the CrossTrade live
//! client. The pipeline only ever talks to `dyn Executor`.

use async_trait::async_trait;

use crate::domain::{BracketOutcome, BracketRequest};

/// Why an execution did not succeed, split by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    /// The broker refused the request; nothing to retry. The message is the broker's, verbatim.
    #[error("{0}")]
    Rejected(String),
    /// The broker refused our credentials.
    #[error("broker refused the token: {0}")]
    Unauthorized(String),
    /// The request never reached the broker (connection refused, throttled): safe to retry.
    #[error("broker not reachable: {0}")]
    Transient(String),
    /// The request may or may not have been carried out (timeout, 5xx, connection lost after sending).
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Short name for logs and records (`paper`, `crosstrade-http`, ...).
    fn name(&self) -> &str;

    /// Carries out one validated CancelAndBracket request: cancel, wait, place.
    async fn cancel_and_bracket(&self, req: &BracketRequest) -> Result<BracketOutcome, ExecError>;
}
