//! The errors a caller of the relay sees, and their HTTP status codes: the one place where that mapping lives.

/// The reason (record) and error (execution) stored for an alert the kill switch refused.
pub const KILL_SWITCH_REASON: &str = "kill switch";

/// An error answered to a caller as `{"error": "..."}` with the status below. Messages say what to fix and
/// never contain a secret or signature.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RelayError {
    /// 400: the body cannot be parsed, or a seed-API request is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing or bad authentication.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the sender's address is not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown source, alert, account or order.
    #[error("{0}")]
    NotFound(String),
    /// 413: body over the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 422: template or validation error, idempotency key reused with another body.
    #[error("{0}")]
    Unprocessable(String),
    /// 429: over a rate limit; retry after the given seconds.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// 502: the broker answered, but not with a usable outcome (unknown outcome).
    #[error("{0}")]
    BadGateway(String),
    /// 503: the relay cannot take the alert now (journal unavailable, shutting down).
    #[error("{0}")]
    Unavailable(String),
    /// 503: the kill switch is on; the alert was recorded as rejected with reason [`KILL_SWITCH_REASON`].
    #[error("kill switch is on: the alert was recorded as rejected and nothing executes (POST /api/kill-switch {{\"enabled\": false}} to resume)")]
    KillSwitch,
    /// 500: a bug or storage failure.
    #[error("{0}")]
    Internal(String),
}

impl RelayError {
    pub fn status(&self) -> u16 {
        match self {
            RelayError::BadRequest(_) => 400,
            RelayError::Unauthorized(_) => 401,
            RelayError::Forbidden(_) => 403,
            RelayError::NotFound(_) => 404,
            RelayError::PayloadTooLarge(_) => 413,
            RelayError::Unprocessable(_) => 422,
            RelayError::RateLimited { .. } => 429,
            RelayError::BadGateway(_) => 502,
            RelayError::Unavailable(_) | RelayError::KillSwitch => 503,
            RelayError::Internal(_) => 500,
        }
    }

    /// Short label for metrics (`alert_relay_rejections_total{reason=...}`).
    pub fn reason(&self) -> &'static str {
        match self {
            RelayError::BadRequest(_) => "bad_request",
            RelayError::Unauthorized(_) => "unauthorized",
            RelayError::Forbidden(_) => "forbidden",
            RelayError::NotFound(_) => "not_found",
            RelayError::PayloadTooLarge(_) => "too_large",
            RelayError::Unprocessable(_) => "unprocessable",
            RelayError::RateLimited { .. } => "rate_limited",
            RelayError::BadGateway(_) => "bad_gateway",
            RelayError::Unavailable(_) => "unavailable",
            RelayError::KillSwitch => "kill_switch",
            RelayError::Internal(_) => "internal",
        }
    }

    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            RelayError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.to_string() })
    }
}

impl From<crate::journal::JournalError> for RelayError {
    fn from(e: crate::journal::JournalError) -> Self {
        tracing::error!(error = %e, "journal error");
        RelayError::Unavailable(format!(
            "the journal is unavailable, nothing was recorded or executed: {e}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kill switch is its own error: 503, counted as "kill_switch", and its message says how to resume.
    #[test]
    fn the_kill_switch_error_says_how_to_resume() {
        let e = RelayError::KillSwitch;
        assert_eq!((e.status(), e.reason()), (503, "kill_switch"));
        assert!(
            e.to_string()
                .ends_with("(POST /api/kill-switch {\"enabled\": false} to resume)"),
            "{e}"
        );
    }
}
