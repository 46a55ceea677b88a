//! Operator controls (Bearer): `GET`/`POST /api/kill-switch`, `POST /api/alerts/{id}/replay`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::response::respond_with;
use super::{bearer_ok, read_body, respond, unauthorized, with_relay};
use crate::error::RelayError;
use crate::relay::{record_reply, Relay, Resolution};
use crate::replay::{ReplayOptions, ReplayTarget};
use warp::http::StatusCode;

pub fn routes(relay: Arc<Relay>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let auth = warp::header::optional::<String>("authorization");
    let get = warp::path!("api" / "kill-switch")
        .and(warp::get())
        .and(auth)
        .and(with_relay(relay.clone()))
        .map(|authz: Option<String>, relay: Arc<Relay>| {
            if !bearer_ok(&relay, authz.as_deref(), None) {
                return respond(Err(unauthorized()));
            }
            respond(Ok(state(&relay)))
        });
    let set = warp::path!("api" / "kill-switch")
        .and(warp::post())
        .and(auth)
        .and(warp::body::stream())
        .and(with_relay(relay.clone()))
        .then(
            |authz: Option<String>, body, relay: Arc<Relay>| async move {
                if !bearer_ok(&relay, authz.as_deref(), None) {
                    return respond(Err(unauthorized()));
                }
                let result = async {
                    let raw = read_body(body, 4096).await?;
                    let v: Value = serde_json::from_slice(&raw).map_err(|e| {
                        RelayError::InvalidRequest(format!(
                            "body must be {{\"enabled\": true|false}}: {e}"
                        ))
                    })?;
                    let enabled = v.get("enabled").and_then(Value::as_bool).ok_or_else(|| {
                        RelayError::InvalidRequest("enabled: must be true or false".into())
                    })?;
                    relay.set_kill_switch(enabled).await?;
                    Ok(state(&relay))
                }
                .await;
                respond(result)
            },
        );
    let replay = warp::path!("api" / "alerts" / String / "replay")
        .and(warp::post())
        .and(auth)
        .and(warp::body::stream())
        .and(with_relay(relay.clone()))
        .then(
            |id: String, authz: Option<String>, body, relay: Arc<Relay>| async move {
                let v = match admin_body(&relay, authz.as_deref(), body, "body is not valid JSON")
                    .await
                {
                    Ok(v) => v,
                    Err(refused) => return refused,
                };
                let result = async {
                    let to: ReplayTarget = match v.get("to") {
                        None => ReplayTarget::DryRun,
                        Some(t) => serde_json::from_value(t.clone()).map_err(|_| {
                            RelayError::InvalidRequest(
                                "to: must be \"dry-run\", \"paper\" or \"live\"".into(),
                            )
                        })?,
                    };
                    let opts: ReplayOptions = serde_json::from_value(v.clone()).map_err(|e| {
                        RelayError::InvalidRequest(format!("template/account must be strings: {e}"))
                    })?;
                    let (rec, plan) = relay
                        .replay(&id, to, &opts, Duration::from_secs(10))
                        .await?;
                    Ok((rec, plan))
                }
                .await;
                // 202 while the replay is still running.
                let status = match &result {
                    Ok((rec, _)) if !rec.is_final() => StatusCode::ACCEPTED,
                    _ => StatusCode::OK,
                };
                respond_with(
                    status,
                    result.map(|(rec, plan)| {
                        json!({
                            "alert": record_reply(&rec),
                            "plan": plan,
                            "changed": plan.changed(),
                        })
                    }),
                )
            },
        );
    let resolve = warp::path!("api" / "alerts" / String / "resolve")
        .and(warp::post())
        .and(auth)
        .and(warp::body::stream())
        .and(with_relay(relay.clone()))
        .then(
            |id: String, authz: Option<String>, body, relay: Arc<Relay>| async move {
                let what = "body must be {\"status\": \"executed\"|\"failed\", \"note\": \"...\"}";
                let v = match admin_body(&relay, authz.as_deref(), body, what).await {
                    Ok(v) => v,
                    Err(refused) => return refused,
                };
                let result = async {
                    let how: Resolution = v
                        .get("status")
                        .cloned()
                        .and_then(|s| serde_json::from_value(s).ok())
                        .ok_or_else(|| {
                            RelayError::InvalidRequest(
                                "status: must be \"executed\" or \"failed\"".into(),
                            )
                        })?;
                    let note = match v.get("note") {
                        None | Some(Value::Null) => "",
                        Some(Value::String(s)) => s.as_str(),
                        Some(_) => {
                            return Err(RelayError::InvalidRequest("note: must be a string".into()))
                        }
                    };
                    relay.resolve(&id, how, note).await
                }
                .await;
                respond(result.map(|rec| record_reply(&rec)))
            },
        );
    get.or(set).unify().or(replay).unify().or(resolve).unify()
}

/// The JSON body of a Bearer-authenticated admin request (an empty body is `{}`), or the response refusing
/// it: 401 without a valid token, 400 (`what`: the cause) when the body is not JSON.
async fn admin_body<S, B>(
    relay: &Relay,
    authz: Option<&str>,
    body: S,
    what: &str,
) -> Result<Value, Response>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    if !bearer_ok(relay, authz, None) {
        return Err(respond(Err(unauthorized())));
    }
    let raw = read_body(body, 16 * 1024)
        .await
        .map_err(|e| respond(Err(e)))?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&raw)
        .map_err(|e| respond(Err(RelayError::InvalidRequest(format!("{what}: {e}")))))
}

fn state(relay: &Relay) -> Value {
    json!({"enabled": relay.kill_switch_on()})
}
