//! Outcomes into HTTP: the one place that decides status codes, `Retry-After` and `Idempotent-Replayed`.
//! The relay answers with domain outcomes ([`Ingested`], [`Answer`], [`RelayError`]); this turns them into
//! responses for HTTP and into frames for the WebSocket RPC.

use std::time::Duration;

use serde_json::{json, Value};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply as _;

use crate::api::Answer;
use crate::error::RelayError;
use crate::headers::Headers;
use crate::record::{Execution, Status};
use crate::relay::{record_reply, Ingested, MAX_PREFER_WAIT_SECS};

/// A refusal on its way out: status, the message for `{"error": ...}`, and when to retry.
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl From<&RelayError> for Refusal {
    fn from(e: &RelayError) -> Refusal {
        let status = match e {
            RelayError::Body(_) | RelayError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            RelayError::Authentication(_) => StatusCode::UNAUTHORIZED,
            RelayError::AddressNotAllowed(_) => StatusCode::FORBIDDEN,
            RelayError::UnknownSource(_) | RelayError::NotFound(_) => StatusCode::NOT_FOUND,
            RelayError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            RelayError::Template(_)
            | RelayError::Contract(_)
            | RelayError::KeyTooLong(_)
            | RelayError::KeyConflict(_)
            | RelayError::NotReplayable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            RelayError::Conflict(_) | RelayError::Stale { .. } => StatusCode::CONFLICT,
            RelayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            RelayError::KillSwitch | RelayError::ShuttingDown | RelayError::Journal(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            RelayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Refusal {
            status,
            message: e.to_string(),
            retry_after_secs: e.retry_after_secs(),
        }
    }
}

/// The HTTP status of an error.
pub fn status_of(e: &RelayError) -> StatusCode {
    Refusal::from(e).status
}

/// A finished CancelAndBracket execution, as CrossTrade answers it: 200 with the outcome, or an error whose
/// status says what became of it (failed 400, rejected 429, unknown 502, anything else 503).
fn execution_answer(exec: &Execution) -> Result<Value, Refusal> {
    let message = exec
        .error
        .clone()
        .unwrap_or_else(|| format!("execution {}", exec.status.as_str()));
    let (status, retry_after_secs) = match exec.status {
        Status::Executed => {
            return Ok(serde_json::to_value(exec.outcome.as_ref()).unwrap_or(Value::Null))
        }
        Status::Failed => (StatusCode::BAD_REQUEST, None),
        Status::Rejected => (StatusCode::TOO_MANY_REQUESTS, Some(1)),
        Status::Unknown => (StatusCode::BAD_GATEWAY, None),
        _ => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    Err(Refusal {
        status,
        message,
        retry_after_secs,
    })
}

/// An API answer as a body, or a refusal; `true` when it repeats an earlier call.
fn api_answer(r: Result<Answer, RelayError>) -> (Result<Value, Refusal>, bool) {
    match r {
        Ok(Answer::Body(v)) => (Ok(v), false),
        Ok(Answer::Execution(o)) => (execution_answer(&o.execution), o.repeat),
        Err(e) => (Err(Refusal::from(&e)), false),
    }
}

/// The HTTP response to a CrossTrade-compatible API call.
pub fn api_response(r: Result<Answer, RelayError>) -> Response {
    match api_answer(r) {
        (Ok(v), repeat) => {
            let mut resp = json_response(StatusCode::OK, &v);
            if repeat {
                replayed(&mut resp);
            }
            resp
        }
        (Err(refusal), _) => refusal_response(&refusal),
    }
}

/// The WebSocket RPC frame answering call `id`: `data` on success, else `error` with its HTTP status.
pub fn api_frame(id: Value, r: Result<Answer, RelayError>) -> Value {
    match api_answer(r) {
        (Ok(v), _) => json!({"id": id, "data": v}),
        (Err(f), _) => json!({"id": id, "error": f.message, "status": f.status.as_u16()}),
    }
}

/// The HTTP response to a webhook.
pub fn ingested_response(r: Result<Ingested, RelayError>) -> Response {
    match r {
        Ok(Ingested::Accepted { alert_id }) => json_response(
            StatusCode::ACCEPTED,
            &json!({"alertId": alert_id, "status": "accepted"}),
        ),
        Ok(Ingested::Skipped { alert_id, reason }) => json_response(
            StatusCode::OK,
            &json!({"alertId": alert_id, "status": "skipped", "reason": reason}),
        ),
        Ok(Ingested::Finished(rec)) => json_response(StatusCode::OK, &record_reply(&rec)),
        Ok(Ingested::Repeat(rec)) => {
            let mut resp = json_response(StatusCode::OK, &record_reply(&rec));
            replayed(&mut resp);
            resp
        }
        Err(e) => error_response(&e),
    }
}

/// 200 with the JSON body, or the error.
pub fn respond(r: Result<Value, RelayError>) -> Response {
    respond_with(StatusCode::OK, r)
}

/// `status` with the JSON body, or the error.
pub fn respond_with(status: StatusCode, r: Result<Value, RelayError>) -> Response {
    match r {
        Ok(v) => json_response(status, &v),
        Err(e) => error_response(&e),
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

pub fn error_response(e: &RelayError) -> Response {
    let mut resp = refusal_response(&Refusal::from(e));
    if let RelayError::Stale { newer_alert_id, .. } = e {
        // The newer alert, by id, beside the message: what a client needs to look it up.
        let body = json!({"error": e.to_string(), "newerAlertId": newer_alert_id});
        let status = resp.status();
        resp = json_response(status, &body);
    }
    resp
}

fn refusal_response(f: &Refusal) -> Response {
    let mut resp = json_response(f.status, &json!({ "error": f.message }));
    if let Some(secs) = f.retry_after_secs {
        resp.headers_mut()
            .insert("Retry-After", HeaderValue::from(secs));
    }
    resp
}

/// Marks a response as the answer to a repeated delivery or call.
fn replayed(resp: &mut Response) {
    resp.headers_mut()
        .insert("Idempotent-Replayed", HeaderValue::from_static("true"));
}

/// `Prefer: wait=N` (RFC 7240), capped at [`MAX_PREFER_WAIT_SECS`].
pub fn prefer_wait(headers: &HeaderMap) -> Option<Duration> {
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

/// The request's headers as the domain sees them (values that are not text are left out, as absent).
pub fn domain_headers(headers: &HeaderMap) -> Headers {
    Headers::new(headers.iter().filter_map(|(k, v)| {
        v.to_str()
            .ok()
            .map(|v| (k.as_str().to_string(), v.to_string()))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn prefer_wait_is_read_and_capped() {
        assert_eq!(
            prefer_wait(&headers(&[("prefer", "wait=5")])),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            prefer_wait(&headers(&[("prefer", "respond-async, wait=100")])),
            Some(Duration::from_secs(MAX_PREFER_WAIT_SECS))
        );
        assert_eq!(prefer_wait(&headers(&[("prefer", "wait=-1")])), None);
        assert_eq!(prefer_wait(&headers(&[])), None);
    }

    /// Every error has its status here and nowhere else.
    #[test]
    fn statuses_by_what_happened() {
        let cases = [
            (RelayError::Body("x".into()), 400),
            (RelayError::InvalidRequest("x".into()), 400),
            (RelayError::Authentication("x".into()), 401),
            (RelayError::AddressNotAllowed("x".into()), 403),
            (RelayError::UnknownSource("x".into()), 404),
            (RelayError::BodyTooLarge("x".into()), 413),
            (RelayError::Template("x".into()), 422),
            (RelayError::Contract("x".into()), 422),
            (RelayError::KeyConflict("x".into()), 422),
            (RelayError::Conflict("x".into()), 409),
            (
                RelayError::RateLimited {
                    message: "x".into(),
                    retry_after_secs: 2,
                },
                429,
            ),
            (RelayError::KillSwitch, 503),
            (RelayError::ShuttingDown, 503),
            (RelayError::Journal("x".into()), 503),
            (RelayError::Internal("x".into()), 500),
        ];
        for (e, code) in cases {
            assert_eq!(status_of(&e).as_u16(), code, "{e:?}");
        }
        let resp = error_response(&RelayError::RateLimited {
            message: "slow down".into(),
            retry_after_secs: 2,
        });
        assert_eq!(resp.headers()["retry-after"], "2");
    }
}
