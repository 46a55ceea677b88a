//! The one error a caller of the relay sees. Each variant says what happened; the HTTP status each one is
//! answered with is decided in one place, `web::response`, and the domain never speaks HTTP.

/// The reason (record) and error (execution) stored for an alert the kill switch refused.
pub const KILL_SWITCH_REASON: &str = "kill switch";

/// Why the relay did not take (or could not answer) a request. Messages say what to fix and never contain a
/// secret or signature.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RelayError {
    /// The webhook names a source that is not configured.
    #[error("{0}")]
    UnknownSource(String),
    /// No such alert, account, order or endpoint.
    #[error("{0}")]
    NotFound(String),
    /// The sender's address may not send to this source.
    #[error("{0}")]
    AddressNotAllowed(String),
    /// The body is over the configured limit.
    #[error("{0}")]
    BodyTooLarge(String),
    /// Missing or bad authentication (signature, token, bearer token).
    #[error("{0}")]
    Authentication(String),
    /// The alert's body cannot be parsed.
    #[error("{0}")]
    Body(String),
    /// A request to the API is invalid: a CancelAndBracket field, a query parameter, an admin body.
    #[error("{0}")]
    InvalidRequest(String),
    /// The template could not turn the alert into requests (render error, template choice, an account that
    /// is not configured).
    #[error("{0}")]
    Template(String),
    /// An explicit contract that does not exist or has expired (`ES 13-26`, `ES 09-26` after its expiry).
    #[error("{0}")]
    Contract(String),
    /// The idempotency key is over the length limit.
    #[error("{0}")]
    KeyTooLong(String),
    /// The idempotency key was already used with another body.
    #[error("{0}")]
    KeyConflict(String),
    /// A stored alert cannot be replayed as asked.
    #[error("{0}")]
    NotReplayable(String),
    /// The alert is not in a state the request applies to (e.g. resolving an execution that is not
    /// `unknown`).
    #[error("{0}")]
    Conflict(String),
    /// A replay would put an older bracket over a newer alert's on the same lane.
    #[error("{message}")]
    Stale {
        message: String,
        newer_alert_id: String,
    },
    /// Over a rate limit; retry after the given seconds.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// The kill switch is on; the alert was recorded as rejected with reason [`KILL_SWITCH_REASON`].
    #[error("kill switch is on: the alert was recorded as rejected and nothing executes (POST /api/kill-switch {{\"enabled\": false}} to resume)")]
    KillSwitch,
    /// The relay is stopping and takes nothing new.
    #[error("the relay is shutting down; retry shortly")]
    ShuttingDown,
    /// The journal cannot record or answer (disk full, I/O error).
    #[error("{0}")]
    Journal(String),
    /// A bug, or work that stopped unexpectedly.
    #[error("{0}")]
    Internal(String),
}

impl RelayError {
    /// Short label for metrics (`alert_relay_rejections_total{reason=...}`).
    pub fn reason(&self) -> &'static str {
        match self {
            RelayError::Body(_) | RelayError::InvalidRequest(_) => "bad_request",
            RelayError::Authentication(_) => "unauthorized",
            RelayError::AddressNotAllowed(_) => "forbidden",
            RelayError::UnknownSource(_) | RelayError::NotFound(_) => "not_found",
            RelayError::BodyTooLarge(_) => "too_large",
            RelayError::Template(_)
            | RelayError::Contract(_)
            | RelayError::KeyTooLong(_)
            | RelayError::KeyConflict(_)
            | RelayError::NotReplayable(_) => "unprocessable",
            RelayError::Conflict(_) | RelayError::Stale { .. } => "conflict",
            RelayError::RateLimited { .. } => "rate_limited",
            RelayError::ShuttingDown | RelayError::Journal(_) => "unavailable",
            RelayError::KillSwitch => "kill_switch",
            RelayError::Internal(_) => "internal",
        }
    }

    /// For rate limits: when to try again.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            RelayError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

impl From<crate::journal::JournalError> for RelayError {
    fn from(e: crate::journal::JournalError) -> Self {
        tracing::error!(error = %e, "journal error");
        RelayError::Journal(format!(
            "the journal is unavailable, nothing was recorded or executed: {e}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kill switch is its own error, counted as "kill_switch", and its message says how to resume.
    #[test]
    fn the_kill_switch_error_says_how_to_resume() {
        let e = RelayError::KillSwitch;
        assert_eq!(e.reason(), "kill_switch");
        assert!(
            e.to_string()
                .ends_with("(POST /api/kill-switch {\"enabled\": false} to resume)"),
            "{e}"
        );
    }
}
