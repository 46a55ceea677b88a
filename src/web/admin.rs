//! Operator controls: `GET`/`POST /api/kill-switch` (Bearer).

use std::sync::Arc;

use serde_json::{json, Value};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{bearer_ok, read_body, respond, unauthorized, with_relay};
use crate::error::RelayError;
use crate::relay::{Relay, Reply};

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
        .and(with_relay(relay))
        .then(
            |authz: Option<String>, body, relay: Arc<Relay>| async move {
                if !bearer_ok(&relay, authz.as_deref(), None) {
                    return respond(Err(unauthorized()));
                }
                let result = async {
                    let raw = read_body(body, 4096).await?;
                    let v: Value = serde_json::from_slice(&raw).map_err(|e| {
                        RelayError::BadRequest(format!(
                            "body must be {{\"enabled\": true|false}}: {e}"
                        ))
                    })?;
                    let enabled = v.get("enabled").and_then(Value::as_bool).ok_or_else(|| {
                        RelayError::BadRequest("enabled: must be true or false".into())
                    })?;
                    relay.set_kill_switch(enabled).await?;
                    Ok(state(&relay))
                }
                .await;
                respond(result)
            },
        );
    get.or(set).unify()
}

fn state(relay: &Relay) -> Reply {
    Reply {
        status: 200,
        body: json!({"enabled": relay.kill_switch_on()}),
        headers: vec![],
    }
}
